"""``enum_canonical``: the one rule for enumerated values in any letter case."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from factory_portal.api import EnumField, EnumListField
from factory_portal.enums import enum_canonical, enum_choices_text

STATUSES = ("Requested", "Running", "Succeeded", "Failed", "Cancelled")


@pytest.mark.parametrize("given", ["failed", "FAILED", "Failed", " fAiLeD "])
def test_any_letter_case_is_the_member(given):
    assert enum_canonical(given, STATUSES) == "Failed"


@pytest.mark.parametrize("given", ["", "fail", "Failed!", "Faileds"])
def test_anything_else_is_none(given):
    assert enum_canonical(given, STATUSES) is None


def test_the_allowed_values_read_as_a_sentence():
    assert enum_choices_text(["hour", "day", "week"]) == "hour, day or week"
    assert enum_choices_text(["one"]) == "one"


def test_the_api_field_canonicalises_and_names_the_allowed_values():
    field = EnumField(choices=list(STATUSES))
    assert field.run_validation("SUCCEEDED") == "Succeeded"
    with pytest.raises(serializers.ValidationError) as refused:
        field.run_validation("Broken")
    assert "Requested, Running, Succeeded, Failed or Cancelled" in str(refused.value.detail)


def test_the_list_field_keeps_order_without_repeats():
    field = EnumListField(choices=("project", "model", "unit"))
    assert field.run_validation("Unit, PROJECT,unit,,") == ("unit", "project")
    with pytest.raises(serializers.ValidationError) as refused:
        field.run_validation("project,colour")
    assert "colour" in str(refused.value.detail)
