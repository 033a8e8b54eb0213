"""``errors_bounded``: nested validation errors keep their shape and the first 100 messages
(issue 13.9)."""

from __future__ import annotations

from factory_portal.error_lists import errors_bounded


def test_nested_validation_errors_keep_their_shape_and_the_first_100_messages():
    errors = {"thresholds": {i: ["A valid integer is required."] for i in range(500)}}
    errors["amount"] = ["Too small."]
    bounded, total = errors_bounded(errors)
    assert total == 501
    assert list(bounded) == ["thresholds"]
    assert list(bounded["thresholds"]) == list(range(100))
    assert errors_bounded({"amount": ["Too small."]}) == ({"amount": ["Too small."]}, 1)
