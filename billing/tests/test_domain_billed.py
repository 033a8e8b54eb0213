"""Reading AI providers' bills in their documented layouts, drift and the true-up split
(billing.domain.billed; no database)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.domain.billed import (
    ANTHROPIC,
    FOCUS,
    OPENAI,
    BilledFileError,
    BilledRow,
    BilledRowError,
    Skipped,
    anthropic_row,
    csv_rows,
    drift_compare,
    focus_row,
    json_rows,
    openai_row,
    trueup_split,
)

DATA = Path(__file__).parent / "data" / "billed"
SEP10, SEP11 = date(2026, 9, 10), date(2026, 9, 11)
READERS = {FOCUS: focus_row, OPENAI: openai_row, ANTHROPIC: anthropic_row}


def _read(name: str) -> tuple[str, list[BilledRow | Skipped]]:
    path = DATA / name
    if name.endswith(".json"):
        layout, rows = json_rows(path.read_text())
    else:
        with path.open(newline="") as handle:
            layout, lazy = csv_rows(handle)
            rows = list(lazy)
    return layout, [READERS[layout](row, where) for where, row in rows]


def test_focus_takes_ai_usage_charges_with_the_model_of_x_model_or_resource_name():
    layout, rows = _read("focus_ai_1.2.csv")
    assert layout == FOCUS
    taken = [r for r in rows if isinstance(r, BilledRow)]
    assert taken == [
        BilledRow("openai", "gpt-4.1", SEP10, Decimal("1.50")),
        BilledRow("openai", "gpt-4.1", SEP10, Decimal("0.60")),
        BilledRow("openai", "text-embedding-3-small", SEP11, Decimal("0.25")),
    ]
    skipped = [r.reason for r in rows if isinstance(r, Skipped)]
    assert skipped == ["service category Storage", "charge category Tax"]


@pytest.mark.parametrize("name", ["openai_costs.csv", "openai_costs.json"])
def test_openai_costs_csv_and_api_json_read_alike(name):
    layout, rows = _read(name)
    assert layout == OPENAI
    assert rows == [
        BilledRow("openai", "gpt-4.1", SEP10, Decimal("1.50")),
        BilledRow("openai", "gpt-4.1", SEP10, Decimal("0.60")),
        BilledRow("openai", "gpt-4o-mini", SEP11, Decimal("0.0123456")),
    ]


@pytest.mark.parametrize("name", ["anthropic_cost_report.csv", "anthropic_cost_report.json"])
def test_anthropic_cost_report_amounts_are_cents(name):
    layout, rows = _read(name)
    assert layout == ANTHROPIC
    assert rows == [
        BilledRow("anthropic", "claude-sonnet-4-5", SEP10, Decimal("1.5")),
        BilledRow("anthropic", "claude-sonnet-4-5", SEP10, Decimal("0.605")),
        BilledRow("anthropic", "", SEP11, Decimal("0.01")),  # web search: no model
    ]


def test_bad_values_name_their_row_and_column():
    with pytest.raises(BilledRowError, match=r"^line 3, column amount_value: 'lots' is not a"):
        openai_row({"start_time": "1788998400", "amount_value": "lots"}, "line 3")
    with pytest.raises(BilledRowError, match="column BillingCurrency: EUR bills"):
        focus_row(
            {"BilledCost": "1", "BillingCurrency": "EUR", "ChargePeriodStart": "2026-09-01"},
            "line 2",
        )
    with pytest.raises(BilledRowError, match="column starting_at: 'yesterday' is not a date"):
        anthropic_row({"starting_at": "yesterday", "amount": "1"}, "data[0].results[1]")


def test_unknown_layouts_and_broken_json_are_refused_as_a_whole():
    with pytest.raises(BilledFileError, match="not a known bill layout"):
        csv_rows(["date,cost\n", "2026-09-01,1\n"])
    with pytest.raises(BilledFileError, match="without column"):
        csv_rows(["BilledCost,ProviderName\n"])
    with pytest.raises(BilledFileError, match="not valid JSON"):
        json_rows('{"data": [')
    with pytest.raises(BilledFileError, match="no 'data' list"):
        json_rows('{"object": "page"}')
    with pytest.raises(BilledFileError, match="nested too deeply"):  # was a RecursionError: 500
        json_rows("[" * 200_000 + "]" * 200_000)


def test_drift_per_model_with_tolerance_and_unmatched_days():
    billed = {
        ("openai", "gpt-4.1", SEP10): Decimal("10.20"),
        ("openai", "gpt-4.1", SEP11): Decimal("1.00"),  # nothing estimated that day
        ("anthropic", "claude-sonnet-4-5", SEP10): Decimal("5.00"),
    }
    estimated = {
        ("openai", "gpt-4.1", SEP10): Decimal("11.00"),
        ("anthropic", "claude-sonnet-4-5", SEP10): Decimal("5.05"),
        ("anthropic", "claude-sonnet-4-5", SEP11): Decimal("0.05"),  # nothing billed that day
    }
    drift = drift_compare(billed, estimated, tolerance=Decimal(2))
    by_model = {line.model: line for line in drift.lines}
    gpt = by_model["gpt-4.1"]
    assert (gpt.billed, gpt.estimated, gpt.difference) == (
        Decimal("11.20"),
        Decimal("11.00"),
        Decimal("0.20"),
    )
    assert gpt.percent == Decimal("1.82") and gpt.within
    claude = by_model["claude-sonnet-4-5"]
    assert claude.difference == Decimal("-0.10") and claude.percent == Decimal("-1.96")
    assert claude.within
    assert not drift_compare(billed, estimated, tolerance=Decimal("1.9")).lines[0].within
    assert [(u.model, u.day) for u in drift.unmatched_billed] == [("gpt-4.1", SEP11)]
    assert [(u.model, u.day) for u in drift.unmatched_estimated] == [("claude-sonnet-4-5", SEP11)]
    nothing_estimated = drift_compare(billed, {}, tolerance=Decimal(2))
    assert all(line.percent is None and not line.within for line in nothing_estimated.lines)


def test_trueup_split_rounds_once_and_adds_up():
    parts = trueup_split(Decimal("0.10"), {"a": Decimal(1), "b": Decimal(1), "c": Decimal(1)})
    assert parts == {"a": Decimal("0.04"), "b": Decimal("0.03"), "c": Decimal("0.03")}
    assert trueup_split(Decimal("-1.005"), {"a": Decimal(3), "b": Decimal(1)}) == {
        "a": Decimal("-0.75"),
        "b": Decimal("-0.25"),
    }
    assert trueup_split(Decimal("2.00"), {"a": Decimal(0)}) == {"unallocated": Decimal("2.00")}


shares = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=4),
    st.decimals(min_value=0, max_value=10_000, places=10),
    min_size=1,
    max_size=12,
)


@given(difference=st.decimals(min_value=-100_000, max_value=100_000, places=6), shares=shares)
def test_trueup_lines_always_sum_to_the_difference_rounded_to_the_cent(difference, shares):
    parts = trueup_split(difference, shares)
    assert sum(parts.values(), Decimal(0)) == difference.quantize(Decimal("0.01"))
    assert all(amount == amount.quantize(Decimal("0.01")) for amount in parts.values())
    assert set(parts) <= {*shares, "unallocated"}
    # nobody gets a share of the wrong sign
    assert all(amount * difference >= 0 for amount in parts.values())
