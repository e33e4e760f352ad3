"""``garrison admission review`` (one AdmissionReview, offline) and ``garrison admission serve`` (the
validating webhook over HTTPS): parser and commands, thin. The server's modules (FastAPI, uvicorn,
cryptography) are imported inside ``serve`` only."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``admission`` on the top-level subparsers."""
    from garrison.cli.main import _gate_exit_code

    p = sub.add_parser(
        "admission",
        help="Kubernetes admission control: judge AdmissionReviews with posture controls (webhook or offline)",
        description="A validating admission webhook backed by the posture controls. See docs/admission.md.",
    )
    asub = p.add_subparsers(dest="admission_action", metavar="ACTION")
    policy_help = "admission policy (YAML, see docs/admission.md; default: deny PSS baseline, warn restricted)"

    rev = asub.add_parser(
        "review",
        parents=[common],
        help="evaluate one AdmissionReview JSON (FILE or -) and print the AdmissionReview response",
        epilog="FILE holds an AdmissionReview v1, or a recorded webhook call {path, headers, body}. "
        "A body the webhook would refuse with a 400 is an invalid input (exit 5).",
    )
    rev.add_argument("source", metavar="FILE|-", help="the AdmissionReview request; - for standard input")
    rev.add_argument("--policy", type=Path, default=None, metavar="FILE", help=policy_help)
    rev.add_argument(
        "--exit-code",
        type=_gate_exit_code,
        default=0,
        metavar="N",
        help="exit with N (e.g. 1) when the request is denied (a CI gate)",
    )
    rev.set_defaults(func="garrison.cli.admission:cmd_review")

    srv = asub.add_parser(
        "serve",
        parents=[common],
        help="serve the validating webhook over HTTPS (POST /admission/validate) until interrupted",
        epilog="With --self-signed, --tls-cert and --tls-key are written (and ca.crt beside the certificate) "
        "and the caBundle for the ValidatingWebhookConfiguration is printed on standard output.",
    )
    srv.add_argument("--tls-cert", type=Path, required=True, metavar="FILE", help="serving certificate (PEM)")
    srv.add_argument("--tls-key", type=Path, required=True, metavar="FILE", help="its private key (PEM)")
    srv.add_argument("--listen", default="127.0.0.1:8443", metavar="HOST:PORT", help="default 127.0.0.1:8443")
    srv.add_argument("--policy", type=Path, default=None, metavar="FILE", help=policy_help)
    srv.add_argument(
        "--self-signed",
        action="store_true",
        help="generate a CA and a certificate for 127.0.0.1 and localhost into --tls-cert/--tls-key first",
    )
    srv.set_defaults(func="garrison.cli.admission:cmd_serve")

    cfg = asub.add_parser(
        "config",
        parents=[common],
        help="print the ValidatingWebhookConfiguration to apply (YAML), with the caBundle of --ca",
    )
    cfg.add_argument(
        "--ca", type=Path, required=True, metavar="FILE", help="the CA that signed the serving certificate"
    )
    where = cfg.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", default="", help="the webhook's URL (https://HOST:PORT/admission/validate)")
    where.add_argument("--service", default=None, metavar="NAMESPACE/NAME", help="the webhook's Service in the cluster")
    cfg.add_argument("--policy", type=Path, default=None, metavar="FILE", help="its excluded namespaces are not sent")
    cfg.add_argument("--failure-policy", default="Fail", choices=("Fail", "Ignore"), help="default Fail")
    cfg.add_argument("--timeout", type=int, default=5, metavar="SECONDS", help="timeoutSeconds, 1 to 30 (default 5)")
    cfg.set_defaults(func="garrison.cli.admission:cmd_config")


def _read(source: str) -> bytes:
    from garrison.errors import InputError

    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None


def _unwrap(data: bytes) -> bytes:
    """A recorded webhook call (``{path, headers, body}``) → its body; anything else as it is."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return data
    if isinstance(doc, dict) and "request" not in doc and isinstance(doc.get("body"), dict) and "path" in doc:
        return json.dumps(doc["body"]).encode()
    return data


def cmd_review(args: argparse.Namespace) -> int:
    from garrison.admission.policy import load_policy
    from garrison.admission.review import BadReview, handle
    from garrison.errors import InputError

    policy = load_policy(args.policy)
    try:
        _, verdict, doc = handle(_unwrap(_read(args.source)), policy)
    except BadReview as exc:
        raise InputError(f"{args.source}: {exc}") from None
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    return 0 if verdict.allowed else int(args.exit_code)


def cmd_serve(args: argparse.Namespace) -> int:
    from garrison.admission.policy import load_policy
    from garrison.errors import UsageError

    policy = load_policy(args.policy)  # a bad policy fails here, before anything listens
    from garrison.server.admission import parse_listen, self_signed, serve

    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.self_signed:
        made = self_signed(args.tls_cert, args.tls_key)
        print(f"caBundle: {made.ca_bundle}", flush=True)
        print(f"garrison: wrote {made.ca}, {made.cert} and {made.key}", file=sys.stderr)
    for path in (args.tls_cert, args.tls_key):
        if not path.is_file():
            raise UsageError(f"{path}: no such file (give a certificate and key, or --self-signed to make them)")
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(args.tls_cert, args.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"--tls-cert {args.tls_cert} / --tls-key {args.tls_key}: not a usable pair ({exc})") from None
    print(f"garrison: admission webhook on https://{args.listen}/admission/validate", file=sys.stderr, flush=True)
    serve(policy, host, port, args.tls_cert, args.tls_key)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    import base64

    import yaml

    from garrison.admission.config import webhook_configuration
    from garrison.admission.policy import load_policy
    from garrison.errors import UsageError

    policy = load_policy(args.policy)
    try:
        pem = args.ca.read_bytes()
    except OSError as exc:
        raise UsageError(f"--ca {args.ca}: {exc.strerror or exc}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise UsageError(f"--ca {args.ca}: not a PEM certificate")
    service = None
    if args.service is not None:
        ns, sep, name = args.service.partition("/")
        if not sep or not ns or not name:
            raise UsageError(f"--service {args.service!r}: expected NAMESPACE/NAME")
        service = (ns, name)
    if args.url and not args.url.startswith("https://"):
        raise UsageError(f"--url {args.url!r}: the API server calls webhooks over https:// only")
    try:
        doc = webhook_configuration(
            base64.b64encode(pem).decode("ascii"),
            url=args.url,
            service=service,
            excluded_namespaces=policy.excluded_namespaces,
            failure_policy=args.failure_policy,
            timeout_seconds=args.timeout,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(yaml.safe_dump(doc, sort_keys=False))
    return 0
