"""What the management commands share: a refusal in the words of the validation behind it."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError


def command_error(exc: ValidationError) -> CommandError:
    """The command's error for ``exc``: its messages as sentences, one after the other (the
    password rules' three reasons read "too short.; too common." joined by "; ")."""
    sentences = [m if m.rstrip().endswith((".", "!", "?")) else f"{m}." for m in exc.messages]
    return CommandError(" ".join(sentences))
