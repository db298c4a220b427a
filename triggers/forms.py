"""Admin forms: a trigger with readable scopes, and the test-against-an-activity form."""

from __future__ import annotations

import json

from django import forms

from fedsx.models import Actor

from .models import Trigger, normalise_scope


class ScopeField(forms.CharField):
    """A list of names, typed one per line (or comma-separated)."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return normalise_scope(super().to_python(value) or "")


class TriggerForm(forms.ModelForm):
    actor_scope = ScopeField(
        required=False, help_text="Local actor names, one per line; empty: every local actor."
    )
    sender_scope = ScopeField(
        required=False,
        help_text="Remote actor ids or domains, one per line; empty: any sender.",
    )

    class Meta:
        model = Trigger
        fields = ["label", "activity_type", "actor_scope", "sender_scope", "guard", "flow_name"]
        fields += ["enabled"]
        widgets = {"guard": forms.Textarea(attrs={"rows": 3, "cols": 80})}


class TestActivityForm(forms.Form):
    activity = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 16, "cols": 90}),
        help_text="The activity JSON, as a peer would send it.",
    )
    recipient = forms.ModelChoiceField(
        queryset=Actor.objects.filter(is_local=True).order_by("username"),
        help_text="The local actor whose inbox it arrives in.",
    )

    def clean_activity(self) -> dict:
        try:
            value = json.loads(self.cleaned_data["activity"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("an activity is a JSON object")
        return value
