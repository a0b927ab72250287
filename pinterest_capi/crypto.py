"""Encryption of stored access tokens with ``cryptography``'s MultiFernet.

Keys come from ``PINTEREST_CAPI["ENCRYPTION_KEYS"]``, never from SECRET_KEY:
the first key encrypts, every key decrypts, so keys can be rotated by putting
a new one first and running ``pinterest_capi_rotate_keys``.  A wrong key
raises :class:`TokenDecryptionError`; ciphertext is never handed back as if
it were a token.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .conf import SETTINGS_NAME, app_settings
from .exceptions import ConfigurationError, TokenDecryptionError


def _fernet() -> MultiFernet:
    keys = app_settings.ENCRYPTION_KEYS
    if isinstance(keys, (str, bytes)):
        keys = [keys]
    if not keys:
        raise ConfigurationError(
            f"{SETTINGS_NAME}['ENCRYPTION_KEYS'] is empty: add at least one key made with "
            "cryptography.fernet.Fernet.generate_key()."
        )
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"{SETTINGS_NAME}['ENCRYPTION_KEYS'] holds a key that is not a valid Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from exc


def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` with the first configured key."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Decrypt with any configured key; raise if none fits."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenDecryptionError(
            "the stored token cannot be decrypted with any key in ENCRYPTION_KEYS"
        ) from None


def rotate(ciphertext: str) -> str:
    """Re-encrypt ``ciphertext`` with the first key (used after a key change)."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenDecryptionError(
            "the stored token cannot be decrypted with any key in ENCRYPTION_KEYS"
        ) from None
