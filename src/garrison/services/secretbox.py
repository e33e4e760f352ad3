"""Secrets at rest: registry credentials, registry ``Authorization`` headers (Harbor's scan requests),
webhook secrets. Sealed with Fernet (AES-128-CBC + HMAC-SHA256, a timestamp, a version byte) under one
server key, so a copy of the database alone reveals none of them.

Where the key comes from, first match wins:

1. ``GARRISON_SECRET_KEY``: a Fernet key (32 url-safe base64 bytes), for containers that inject secrets
   as variables;
2. ``GARRISON_SECRET_KEY_FILE``: a file holding one;
3. ``<data_dir>/secret.key``: created with mode 0600 on first use, never replaced once it exists (a
   replaced key would make every sealed secret unreadable).

A key that cannot open a sealed value is :class:`WrongKey`, never an empty or garbled secret: the
server refuses loudly rather than pull with no credentials. Nothing here logs a secret or a key.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken

from garrison.errors import GarrisonError

if TYPE_CHECKING:
    from garrison.services.settings import ServerSettings

KEY_ENV = "GARRISON_SECRET_KEY"
KEY_FILE_ENV = "GARRISON_SECRET_KEY_FILE"
#: The key file's name under the data folder when neither variable is set.
KEY_FILE_NAME = "secret.key"

_lock = threading.Lock()


class SecretKeyError(GarrisonError):
    """The secret key is missing, unreadable or not a Fernet key."""


class WrongKey(SecretKeyError):
    """A sealed value does not open with this key (another server's key, or the key was replaced)."""


def _fernet(text: bytes, origin: str) -> Fernet:
    try:
        return Fernet(text.strip())
    except (ValueError, TypeError):
        raise SecretKeyError(
            f"{origin}: not a Fernet key (32 url-safe base64-encoded bytes; make one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
        ) from None


def _read_key_file(path: Path, origin: str) -> Fernet:
    try:
        return _fernet(path.read_bytes(), origin)
    except OSError as e:
        raise SecretKeyError(f"{origin}: cannot read the secret key file {path}: {e.strerror}") from None


def _create_key_file(path: Path) -> None:
    """Write a new key with mode 0600, atomically and only if no file is there (``O_EXCL`` on a temporary
    name, then a hard link that fails when another process won the race: never a replaced key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def key_source(settings: ServerSettings) -> str:
    """Where the key is taken from (for ``garrison server`` messages and the docs; never the key)."""
    if os.environ.get(KEY_ENV):
        return KEY_ENV
    if os.environ.get(KEY_FILE_ENV):
        return f"{KEY_FILE_ENV}={os.environ[KEY_FILE_ENV]}"
    return str(Path(settings.data_dir) / KEY_FILE_NAME)


def load_key(settings: ServerSettings) -> Fernet:
    """The server's key (see the module docstring for the order)."""
    env = os.environ.get(KEY_ENV, "")
    if env:
        return _fernet(env.encode(), KEY_ENV)
    named = os.environ.get(KEY_FILE_ENV, "")
    if named:
        return _read_key_file(Path(named), KEY_FILE_ENV)
    path = Path(settings.data_dir) / KEY_FILE_NAME
    with _lock:
        if not path.exists():
            _create_key_file(path)
    return _read_key_file(path, str(path))


def seal(settings: ServerSettings, plaintext: str) -> str:
    """``plaintext`` encrypted and authenticated under the server key (url-safe text, safe to store)."""
    return load_key(settings).encrypt(plaintext.encode()).decode("ascii")


def unseal(settings: ServerSettings, sealed: str) -> str:
    """The plaintext of :func:`seal`'s output. :class:`WrongKey` when it was sealed under another key or
    was altered."""
    try:
        return load_key(settings).decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise WrongKey(
            f"a stored secret does not open with the secret key from {key_source(settings)}: "
            "it was sealed under another key (restore the original key, or set the credentials again)"
        ) from None
