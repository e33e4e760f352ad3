"""``garrison server run --tls-self-signed``: a CA and a serving certificate made once and kept in
``<data_dir>/tls`` (the key 0600, the folder 0700), reused while they cover the names the server is
reached by, and replaced only when they are garrison's own.

"Our own" is written down rather than guessed: ``made-by-garrison.json`` lists the SHA-256 of every
file this module wrote there. A file in the way that is not listed (a certificate someone put there, or
one edited since) is never replaced: the command stops and says so. The certificates themselves are made
by :func:`garrison.server.admission.self_signed`, the one generator of the project (ECDSA P-256, one
year), so the webhook's and the server's material cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from garrison.errors import UsageError

FOLDER = "tls"
MANIFEST = "made-by-garrison.json"
CA, CERT, KEY = "ca.crt", "server.crt", "server.key"
#: A certificate closer than this to its end is made again.
RENEW_BEFORE = dt.timedelta(days=30)
_WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104 - recognised, not bound to


@dataclass(frozen=True)
class ServingTLS:
    """The files uvicorn serves with and what a client needs to trust them."""

    cert: Path
    key: Path
    ca: Path
    #: SHA-256 of the CA certificate (DER), as ``AB:CD:…`` (the form ``openssl x509 -fingerprint -sha256`` prints).
    fingerprint: str
    #: The names and addresses the certificate is valid for.
    hosts: tuple[str, ...]
    #: True when this run made them (a client must trust the new CA).
    made: bool


def names_for(listen_host: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The names a certificate for a server listening on ``listen_host`` must carry: that host (the
    machine's names for a wildcard address), ``extra``, and the loopback names."""
    first = [socket.gethostname(), socket.getfqdn()] if listen_host in _WILDCARDS else [listen_host]
    return tuple(dict.fromkeys(h for h in (*first, *extra, "localhost", "127.0.0.1", "::1") if h))


def fingerprint_of(pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ours(folder: Path) -> dict[str, list[str]]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    made = data.get("made") if isinstance(data, dict) else None
    if not isinstance(made, dict):
        return {}
    return {k: [h for h in v if isinstance(h, str)] for k, v in made.items() if isinstance(v, list)}


def _covers(cert_pem: bytes, hosts: tuple[str, ...]) -> bool:
    """The certificate names every host and is not near its end."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_pem)
    if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    dns = {n.lower() for n in san.get_values_for_type(x509.DNSName)}
    ips = set(san.get_values_for_type(x509.IPAddress))
    for h in hosts:
        try:
            if ipaddress.ip_address(h) not in ips:
                return False
        except ValueError:
            if h.lower() not in dns:
                return False
    return True


def ensure_self_signed(data_dir: Path, hosts: tuple[str, ...]) -> ServingTLS:
    """The CA and serving certificate of ``<data_dir>/tls``, made when missing, not covering ``hosts``
    or near their end. Raises :class:`UsageError` when a file in the way is not garrison's own."""
    folder = data_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    paths = {n: folder / n for n in (CA, CERT, KEY)}
    ours = _ours(folder)
    present = {n: p for n, p in paths.items() if p.exists() or p.is_symlink()}
    foreign = [p for n, p in present.items() if p.is_symlink() or not p.is_file() or _sha(p) not in ours.get(n, [])]
    if not foreign and len(present) == 3 and _covers(paths[CERT].read_bytes(), hosts):
        os.chmod(paths[KEY], 0o600)
        return ServingTLS(
            paths[CERT], paths[KEY], paths[CA], fingerprint_of(paths[CA].read_bytes()), _names(paths[CERT]), False
        )
    if foreign:
        listed = ", ".join(str(p) for p in foreign)
        raise UsageError(
            f"--tls-self-signed: {listed} exists and was not made by garrison (or was changed since); "
            "move it away, or serve it with --tls-cert FILE --tls-key FILE"
        )
    from garrison.server.admission import self_signed

    work = Path(tempfile.mkdtemp(prefix=".new-", dir=folder))
    try:
        self_signed(work / CERT, work / KEY, hosts)
        for n in (CA, CERT, KEY):
            ours.setdefault(n, [])
            ours[n] = [*ours[n][-4:], _sha(work / n)]  # the last few: a run cut short leaves only ours
        manifest = work / MANIFEST
        manifest.write_text(json.dumps({"made": ours}, indent=2) + "\n", encoding="utf-8")
        os.replace(manifest, folder / MANIFEST)  # first: whatever happens next, the new files are known
        for n in (KEY, CERT, CA):
            os.replace(work / n, paths[n])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ServingTLS(paths[CERT], paths[KEY], paths[CA], fingerprint_of(paths[CA].read_bytes()), hosts, True)


def _names(cert: Path) -> tuple[str, ...]:
    from cryptography import x509

    san = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    return tuple(str(v) for v in san.value.get_values_for_type(x509.DNSName)) + tuple(
        str(v) for v in san.value.get_values_for_type(x509.IPAddress)
    )
