"""The form of one runtime rule's settings (one per rule on the rule settings pages)."""

from __future__ import annotations

from typing import Any

from django import forms

from alerts.oncall.domain.limits import setting_problems
from alerts.oncall.domain.rules import SEVERITIES, Rule


class RuleSettingForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Enabled")
    threshold = forms.DecimalField(max_digits=14, decimal_places=4, label="Threshold")
    window_s = forms.IntegerField(label="Window (seconds)")
    for_s = forms.IntegerField(label="For (seconds before firing)")
    severity = forms.ChoiceField(
        choices=[(s, s.title()) for s in SEVERITIES], label="Severity (new incidents)"
    )

    def __init__(self, rule: Rule, *args: Any, **kwargs: Any) -> None:
        """Prefixed with the rule's key: the page holds one form per rule."""
        kwargs.setdefault("prefix", rule.key)
        kwargs.setdefault(
            "initial",
            {
                "enabled": rule.enabled,
                # "1000", not normalize()'s "1E+3"
                "threshold": f"{rule.threshold.normalize():f}",
                "window_s": rule.window_s,
                "for_s": rule.for_s,
                "severity": rule.severity,
            },
        )
        super().__init__(*args, **kwargs)
        self.rule = rule
        self.fields["threshold"].label = f"Threshold ({rule.unit.strip()})"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if all(data.get(f) is not None for f in ("threshold", "window_s", "for_s", "severity")):
            problems = setting_problems(
                self.rule,
                threshold=data["threshold"],
                window_s=data["window_s"],
                for_s=data["for_s"],
                severity=data["severity"],
            )
            for name, message in problems.items():
                self.add_error(name, message)
        return data
