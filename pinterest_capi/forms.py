"""Admin forms.

The access token is write-only: the form has a password field that never
renders a value (not even after a validation error), the stored ciphertext is
not a form field, and a blank token on change keeps the current one.  The
token is handed to :meth:`AdAccount.set_token`, which encrypts it and clears
an earlier authorisation error.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from .models import AdAccount

_AD_ACCOUNT_ID_RE = re.compile(r"^\d{1,18}$")


class AdAccountForm(forms.ModelForm):
    """Create or edit an ad account; the token can be replaced but never read back."""

    access_token = forms.CharField(
        label=_("Access token"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = AdAccount
        fields = [
            "tenant",
            "name",
            "ad_account_id",
            "tag_id",
            "access_token",
            "active",
            "test_mode",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adding = self.instance._state.adding
        token_field = self.fields["access_token"]
        token_field.required = adding
        if adding:
            token_field.help_text = _(
                "The Conversions API access token for this ad account. It is stored encrypted "
                "and cannot be shown again."
            )
        else:
            token_field.help_text = _(
                "Leave blank to keep the current token. A new token replaces it and clears "
                "an authorisation error."
            )
        # One clear message from clean_ad_account_id instead of the generic length/regex ones.
        id_field = self.fields["ad_account_id"]
        id_field.validators = []
        id_field.max_length = None
        id_field.widget.attrs.update({"inputmode": "numeric", "maxlength": "18"})

    def clean_ad_account_id(self) -> str:
        value = (self.cleaned_data.get("ad_account_id") or "").strip()
        if not _AD_ACCOUNT_ID_RE.match(value):
            raise forms.ValidationError(
                _(
                    "The ad account id is the number Pinterest shows for the ad account: "
                    "digits only, at most 18 (got %(value)s)."
                ),
                code="invalid_ad_account_id",
                params={"value": repr(value[:40])},
            )
        return value

    def clean_tag_id(self) -> str:
        value = "".join((self.cleaned_data.get("tag_id") or "").split())
        if value and not value.isdigit():
            raise forms.ValidationError(
                _(
                    "The Pinterest Tag id is the number Ads Manager (or Verify connection) "
                    "shows for the Tag: digits only."
                ),
                code="invalid_tag_id",
            )
        return value

    @sensitive_variables()
    def clean_access_token(self) -> str:
        token = self.cleaned_data.get("access_token") or ""
        if token and any(ch.isspace() for ch in token):
            # Never echo the value back: it is a secret even when mistyped.
            raise forms.ValidationError(
                _("An access token has no spaces or line breaks; paste it again."),
                code="invalid_token",
            )
        return token

    @sensitive_variables()
    def save(self, commit: bool = True) -> AdAccount:
        token = self.cleaned_data.get("access_token")
        if token:
            self.instance.set_token(token)
        return super().save(commit=commit)
