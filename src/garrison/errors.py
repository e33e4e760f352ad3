"""The garrison error tree and its exit codes, in one place.

::

    GarrisonError                      exit 2 unless a subclass says otherwise
    ├── UsageError                     bad flags or a reference that does not parse          (exit 2)
    │   └── SettingError (config.py)   a setting's value, named with where it came from
    ├── SourceError                    the image or tree could not be read                   (exit 3)
    │   ├── NotFoundError              no such image, tag, blob, file or directory
    │   ├── AuthError                  the registry refused our credentials
    │   ├── RegistryError              any other registry/protocol failure (5xx, bad JSON…)
    │   └── BadImageError              the bytes are not a valid image
    │       ├── DigestMismatchError    content does not match its digest
    │       ├── UnsafeContentError     path traversal, link escaping the image…
    │       └── LimitExceededError     decompression bomb, oversize file or manifest
    ├── DatabaseError                  the advisory database cannot be built or read       (exit 4)
    │   ├── MirrorError                the mirror is down or returned garbage
    │   └── SchemaError                the database file is from another schema version
    └── InputError                     an SBOM, ignore file or VEX document is invalid      (exit 5)

Every exit code is below (``EXIT_*``). 1 is the usual ``--exit-code`` (findings remain after the
filters); ``--exit-code`` may not be one of :data:`RESERVED_EXIT_CODES`, so that a CI gate is never
mistaken for an error. 70 (``EX_SOFTWARE``) is an unexpected exception, a bug; 130 is Ctrl-C.
The core raises these; only the CLI turns them into messages and exit codes.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_SOURCE = 3
EXIT_DATABASE = 4
EXIT_INPUT = 5
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
#: Codes garrison exits with on its own; ``--exit-code`` refuses them. Codes from 126 up mean "cannot
#: execute", "not found" and "killed by a signal" to shells, so they are refused too.
RESERVED_EXIT_CODES = frozenset({EXIT_USAGE, EXIT_SOURCE, EXIT_DATABASE, EXIT_INPUT, EXIT_INTERNAL})
#: The largest value ``--exit-code`` accepts.
MAX_GATE_EXIT_CODE = 125


class GarrisonError(Exception):
    """Base of every error garrison raises on purpose. ``str(err)`` is a one-line message for users."""

    exit_code = EXIT_USAGE


class UsageError(GarrisonError):
    """The user asked for something that cannot be understood."""

    exit_code = EXIT_USAGE


class SourceError(GarrisonError):
    """The artifact could not be read."""

    exit_code = EXIT_SOURCE


class NotFoundError(SourceError):
    """An image, tag, blob, file or directory does not exist."""


class AuthError(SourceError):
    """Authentication or authorization failed."""


class RegistryError(SourceError):
    """A registry answered something unexpected."""


class BadImageError(SourceError):
    """The artifact is malformed."""


class DigestMismatchError(BadImageError):
    """Content does not hash to the digest it was addressed by."""


class UnsafeContentError(BadImageError):
    """Content that tries to escape the image (``..`` paths, absolute links…)."""


class LimitExceededError(BadImageError):
    """A configured size limit was exceeded (decompression bombs, huge manifests)."""


class DatabaseError(GarrisonError):
    """The advisory database cannot be used."""

    exit_code = EXIT_DATABASE


class MirrorError(DatabaseError):
    """The advisory mirror could not be fetched or returned invalid data."""


class SchemaError(DatabaseError):
    """The database file was written by an incompatible garrison version."""


class InputError(GarrisonError):
    """A user-provided document (SBOM, ignore file, VEX) is invalid."""

    exit_code = EXIT_INPUT
