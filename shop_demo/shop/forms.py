"""Forms of the storefront."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation

COUNTRIES = [
    ("GB", "United Kingdom"),
    ("US", "United States"),
    ("IE", "Ireland"),
    ("FR", "France"),
    ("DE", "Germany"),
    ("NL", "Netherlands"),
    ("ES", "Spain"),
    ("CA", "Canada"),
    ("AU", "Australia"),
]


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=99, initial=1)


class SearchForm(forms.Form):
    q = forms.CharField(max_length=200, required=False, strip=True, label="Search")


class NewsletterForm(forms.Form):
    email = forms.EmailField(label="Email")


class CheckoutForm(forms.Form):
    email = forms.EmailField()
    phone = forms.CharField(max_length=32, required=False, help_text="Optional.")
    first_name = forms.CharField(max_length=100)
    last_name = forms.CharField(max_length=100)
    city = forms.CharField(max_length=100)
    postcode = forms.CharField(max_length=20)
    country = forms.ChoiceField(choices=COUNTRIES, initial="GB")

    def clean_postcode(self) -> str:
        return self.cleaned_data["postcode"].strip().upper()


class SignUpForm(forms.Form):
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, strip=False)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        user_model = get_user_model()
        taken = user_model.objects.filter(email__iexact=email).exists()
        if taken or user_model.objects.filter(username__iexact=email[:150]).exists():
            raise forms.ValidationError("An account with this email already exists.")
        return email

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password
