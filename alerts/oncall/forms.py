"""The silence form of the alerts pages: rule (or any), label matchers as ``key=value`` lines,
how long (1 h, 4 h, 1 d, or until a time in the viewer's zone) and why. Reading the input is
``domain.silence_input``; whether the rule exists and the end is in the future is
``services.silences.silence_create``'s check, whose refusals land on the same fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms

from alerts.oncall.domain.rules import OTHER_TITLES, RULES
from alerts.oncall.domain.silence_input import (
    DURATION_LABELS,
    SilenceInputError,
    matchers_parse,
    silence_end,
)
from alerts.oncall.services.silences import MATCHERS_MAX


class SilenceForm(forms.Form):
    # Text, not a choice: an unknown rule gets the service's message naming the rules.
    rule = forms.CharField(
        required=False,
        max_length=64,
        label="Rule",
        widget=forms.Select(
            choices=[
                ("", "Any rule"),
                *((key, rule.title) for key, rule in RULES.items()),
                *OTHER_TITLES.items(),
            ]
        ),
    )
    matchers = forms.CharField(
        required=False,
        label="Labels",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "queue_name=builds"}),
        help_text="One label per line as key=value; alerts having all of them are muted. Empty:"
        " every alert of the rule.",
    )
    duration = forms.ChoiceField(
        label="For", choices=list(DURATION_LABELS.items()), initial="1h", widget=forms.RadioSelect
    )
    ends_at = forms.CharField(
        required=False,
        label="Until",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    reason = forms.CharField(max_length=300, label="Why")

    def __init__(self, *args: Any, now: datetime, zone: ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now, self.zone = now, zone
        self.fields["ends_at"].help_text = f"With “until…”: a date and time in {zone.key}."

    def clean_rule(self) -> str:
        return str(self.cleaned_data["rule"]).strip().lower()

    def clean_matchers(self) -> dict[str, str]:
        try:
            return matchers_parse(self.cleaned_data["matchers"], max_count=MATCHERS_MAX)
        except SilenceInputError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "duration" in data:
            try:
                data["ends_at"] = silence_end(
                    data["duration"], data.get("ends_at", ""), now=self.now, zone=self.zone
                )
            except SilenceInputError as exc:
                self.add_error("ends_at", str(exc))
        return data
