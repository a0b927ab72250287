"""Encryption of stored access tokens with ``cryptography``'s MultiFernet.

Keys come from ``PINTEREST_CAPI["ENCRYPTION_KEYS"]``, never from SECRET_KEY:
the first key encrypts, every key decrypts, so keys can be rotated by putting
a new one first and running ``pinterest_capi_rotate_keys``.  A wrong key
raises :class:`TokenDecryptionError`; ciphertext is never handed back as if
it were a token.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.views.decorators.debug import sensitive_variables

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


def check_keys() -> None:
    """Raise ConfigurationError now if ENCRYPTION_KEYS is empty or malformed.

    Commands call this before touching any row, so a typo in a key stops them
    up front instead of flagging every account as undecryptable.
    """
    _fernet()


@sensitive_variables("plaintext")
def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` with the first configured key.

    Marked sensitive: a bad key raises here with the token as an argument, and
    Django's error reports must show stars instead.
    """
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
    """Re-encrypt ``ciphertext`` with the first key (used after a key change).

    The plaintext never leaves ``cryptography``: MultiFernet decrypts and
    re-encrypts in one call, so the rotation command never holds a token.
    """
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenDecryptionError(
            "the stored token cannot be decrypted with any key in ENCRYPTION_KEYS"
        ) from None


def key_index(ciphertext: str) -> int | None:
    """Position in ENCRYPTION_KEYS of the key that decrypts ``ciphertext``; None if none does.

    Lets the rotation command report how many tokens still depend on an old key
    (all must be at 0 before an old key may be removed).  Only the signature is
    checked (``extract_timestamp``): no plaintext is produced.
    """
    check_keys()
    keys = app_settings.ENCRYPTION_KEYS
    if isinstance(keys, (str, bytes)):
        keys = [keys]
    data = ciphertext.encode()
    for index, key in enumerate(keys):
        try:
            Fernet(key).extract_timestamp(data)
        except InvalidToken:
            continue
        return index
    return None
