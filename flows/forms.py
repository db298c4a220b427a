"""The admin's form for answering a suspended instance."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from .values import NotJSON, check_json


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class ResumeForm(forms.Form):
    # The log length the page showed: an answer is for that wait, not a later one.
    at = forms.IntegerField(widget=forms.HiddenInput, min_value=0, required=False)
    value = forms.CharField(
        label="Value (JSON)",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text='Any JSON value: true, "yes", {"approved": true}, 3 …',
    )

    def clean_value(self) -> Any:
        text = self.cleaned_data["value"]
        try:
            value = json.loads(text, parse_constant=_reject_constant)
            return check_json(value, "the value")
        except (ValueError, RecursionError) as exc:  # NotJSON is a ValueError
            message = str(exc) if isinstance(exc, NotJSON) else f"not valid JSON: {exc}"
            raise forms.ValidationError(message, code="not_json") from None
