"""What a tenant reads for stored option names: allocation methods, drivers (with the unit of
their quantity), parts and forecast methods (pure, no database)."""

from __future__ import annotations

from billing.domain import allocation, forecasting


def test_allocation_names_read_as_words_with_units():
    assert allocation.method_label("fixed_variable") == "Fixed + variable"
    assert allocation.method_label("usage") == "Usage-based"
    assert allocation.driver_label("gb_hours") == "Memory and storage"
    assert allocation.driver_unit("gb_hours") == "GB-hours"
    assert allocation.driver_unit("cpu_seconds") == "CPU-seconds"
    assert allocation.driver_unit("even") == ""
    assert allocation.part_label("variable") == "Variable part"
    # A name added later still reads as words, never as the stored name with underscores.
    assert allocation.method_label("by_contract") == "By contract"
    assert allocation.driver_unit("gpu_hours") == "gpu hours"


def test_every_allocation_method_and_driver_has_a_label():
    assert set(allocation.Method.ALL) <= set(allocation.METHOD_LABELS)
    assert all("_" not in label for label, _ in allocation.DRIVERS.values())


def test_forecast_methods_read_as_words():
    assert forecasting.method_label("ets") == "exponential smoothing"
    assert (
        forecasting.method_label("weekday+ets")
        == "mean of weekday profile and exponential smoothing"
    )
    assert all(part in forecasting.METHOD_LABELS for part in forecasting.CANDIDATES)
