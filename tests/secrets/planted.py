"""A real image with planted, realistic (never valid) credentials, decoys, and a deleted secret.

Layers, bottom first:

0. The Debian 12 minbase root filesystem of the test images (real OS files: none of them must be reported).
1. An application: ``.env``, YAML and INI configs, a GCP service-account JSON, a deploy script, an SSH
   private key, a JWT in JSON, ``.npmrc``, ``~/.docker/config.json``, Python source, and decoys
   (placeholders, ``${VAR}``, ``{{ }}``, ``<…>``, "your_api_key_here" text, the AWS documentation keys).
2. A clean-up layer: whites out ``app/config/deploy-credentials.env`` and rewrites
   ``app/config/rotated.yaml`` without its key. Both secrets stay in layer 1's bytes and must be
   reported with layer 1's diff_id and ``deleted=True``.

:data:`GROUND_TRUTH` lists every planted secret (path, the lines it spans, its layer, whether it is
deleted); anything else a scanner reports is a false finding. Used by ``tests/secrets/test_image.py``
and ``bench/bench_secrets.py``.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass
from pathlib import Path

from tests.support.cache import cached
from tests.support.imagewriter import Dir, EntrySpec, File, ImageRefs, Layer, Whiteout, build_image

VERSION = "planted-secrets-v1"
TAG = "planted"

_R = random.Random(4711)
_UP = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LO = "abcdefghijklmnopqrstuvwxyz"
_DI = "0123456789"
_AN = _UP + _LO + _DI
_HEX = "0123456789abcdef"
_URL = _AN + "-_"
_B64 = _AN + "+/"


def _t(chars: str, n: int) -> str:
    return "".join(_R.choice(chars) for _ in range(n))


@dataclass(frozen=True)
class Planted:
    """One planted secret: where it is and what a scanner should say about it."""

    path: str
    first_line: int
    last_line: int
    #: Index of the layer whose bytes hold it.
    layer: int
    deleted: bool
    what: str

    def covers(self, path: str, line: int) -> bool:
        return path == self.path and self.first_line <= line <= self.last_line


class _Secret(str):
    """A line (or lines) of a planted file that holds a secret."""

    what: str

    def __new__(cls, text: str, what: str) -> _Secret:
        obj = super().__new__(cls, text)
        obj.what = what
        return obj


def _file(path: str, lines: list[str], layer: int, truth: list[Planted], deleted: bool = False) -> File:
    n = 1
    out: list[str] = []
    for item in lines:
        count = item.count("\n") + 1
        if isinstance(item, _Secret):
            truth.append(Planted(path, n, n + count - 1, layer, deleted, item.what))
        out.append(item)
        n += count
    return File(path, ("\n".join(out) + "\n").encode(), 0o600 if "ssh" in path else 0o644)


def _openssh_key() -> str:
    body = [_t(_B64, 70) for _ in range(6)] + [_t(_B64, 30) + "="]
    return "\n".join(
        [
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAA" + _t(_B64, 46),
            *body,
            "-----END OPENSSH PRIVATE KEY-----",
        ]
    )


def _jwt() -> str:
    def enc(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    claims = {"sub": "svc-billing", "scope": "payments:write", "iat": 1767225600, "exp": 1798761600}
    return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc(claims)}.{_t(_URL, 43)}"


def _layers() -> tuple[list[Layer], list[Planted]]:
    """Layers 1 and 2 (the base is added when the image is built) and the ground truth."""
    truth: list[Planted] = []
    pk_lines = [_t(_B64, 64) for _ in range(10)]
    sa_key = "-----BEGIN PRIVATE KEY-----\\nMIIEvQ" + "\\n".join(pk_lines) + "\\n-----END PRIVATE KEY-----\\n"
    sa = [
        "{",
        _Secret('  "type": "service_account",', "gcp-service-account"),
        '  "project_id": "billing-prod-4711",',
        f'  "private_key_id": "{_t(_HEX, 40)}",',
        _Secret(f'  "private_key": "{sa_key}",', "private-key (JSON-escaped)"),
        '  "client_email": "billing@billing-prod-4711.iam.gserviceaccount.com",',
        f'  "client_id": "{_t(_DI, 21)}"',
        "}",
    ]
    docker_auth = base64.b64encode(f"deploy:{_t(_AN, 22)}".encode()).decode()
    app: list[EntrySpec] = [
        Dir("app"),
        Dir("app/config"),
        Dir("app/scripts"),
        Dir("app/src"),
        Dir("app/static"),
        Dir("app/docs"),
        Dir("root"),
        Dir("root/.ssh", 0o700),
        Dir("root/.docker"),
        Dir("opt"),
        Dir("opt/tools"),
        _file(
            "app/.env",
            [
                "# production settings",
                "APP_ENV=production",
                _Secret(f"AWS_ACCESS_KEY_ID=AKIA{_t('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}", "aws-access-key-id"),
                _Secret(f"AWS_SECRET_ACCESS_KEY={_t(_AN + '+/', 40)}", "aws-secret-access-key"),
                _Secret(f"DATABASE_URL=postgres://billing:{_t(_AN, 20)}@db.internal:5432/billing", "database-url"),
                _Secret(f"STRIPE_SECRET_KEY=sk_live_{_t(_AN, 24)}", "stripe-secret-key"),
                "SENTRY_DSN=${SENTRY_DSN}",
                "API_KEY=your_api_key_here",
                "SECRET_KEY=changeme",
            ],
            1,
            truth,
        ),
        _file(
            "app/config/settings.yaml",
            [
                "github:",
                _Secret(f"  token: ghp_{_t(_AN, 36)}", "github-pat"),
                "slack:",
                _Secret(
                    "  webhook: https://hooks.slack.com/services/"
                    f"T{_t(_UP + _DI, 10)}/B{_t(_UP + _DI, 10)}/{_t(_AN, 24)}",
                    "slack-webhook",
                ),
                "database:",
                "  host: db.internal",
                '  password: "{{ .Values.db.password }}"',
                _Secret(f'  admin_password: "{_t(_AN, 7)}%{_t(_AN, 6)}!{_t(_DI, 3)}"', "generic-password"),
                "smtp:",
                "  password: ${SMTP_PASSWORD}",
            ],
            1,
            truth,
        ),
        _file("app/config/gcp-service-account.json", sa, 1, truth),
        _file(
            "app/scripts/deploy.sh",
            [
                "#!/bin/sh",
                "set -eu",
                _Secret(f"export GITLAB_TOKEN=glpat-{_t(_URL, 20)}", "gitlab-pat"),
                'export NPM_TOKEN="${NPM_TOKEN:?}"',
                'curl -fsS -H "Authorization: Bearer $API_TOKEN" https://api.internal.test/deploy',
                'docker login -u deploy -p "$REGISTRY_PASSWORD" registry.internal.test',
            ],
            1,
            truth,
        ),
        _file("root/.ssh/id_ed25519", [_Secret(_openssh_key(), "openssh-private-key")], 1, truth),
        _file(
            "app/static/session.json",
            [
                "{",
                '  "user": "svc-billing",',
                _Secret(f'  "access_token": "{_jwt()}",', "jwt"),
                '  "expires_in": 3600',
                "}",
            ],
            1,
            truth,
        ),
        _file(
            "root/.docker/config.json",
            [
                "{",
                '  "auths": {',
                _Secret(f'    "registry.internal.test": {{"auth": "{docker_auth}"}}', "docker-auth"),
                "  }",
                "}",
            ],
            1,
            truth,
        ),
        _file(
            "app/.npmrc",
            [_Secret(f"//registry.npmjs.org/:_authToken=npm_{_t(_AN, 36)}", "npm-token"), "always-auth=true"],
            1,
            truth,
        ),
        _file(
            "app/config/aws.ini",
            [
                "# from the AWS documentation",
                "[default]",
                "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ],
            1,
            truth,
        ),
        _file(
            "app/config/placeholders.env",
            [
                "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                "STRIPE_KEY=sk_live_${STRIPE_KEY}",
                "JWT_SECRET=<jwt-secret>",
                "PASSWORD={{ password }}",
                "DB_URL=mysql://root:${MYSQL_ROOT_PASSWORD}@mysql:3306/app",
                "SLACK_TOKEN=xoxb-your-bot-token-here",
            ],
            1,
            truth,
        ),
        _file(
            "app/docs/SETUP.txt",
            [
                "Copy .env.dist to .env and set API_KEY=your_api_key_here.",
                "The database password goes in DB_PASSWORD (for example DB_PASSWORD=<password>).",
            ],
            1,
            truth,
        ),
        _file(
            "app/src/client.py",
            [
                "import os",
                "",
                "from billing import Client",
                "",
                'client = Client(api_key=os.environ["API_KEY"], password=settings.password)',
                _Secret(f'HF_TOKEN = "hf_{_t(_AN, 34)}"', "huggingface-token"),
            ],
            1,
            truth,
        ),
        _file(
            "opt/tools/ci.env",
            [
                _Secret(f"SLACK_BOT_TOKEN=xoxb-{_t(_DI, 12)}-{_t(_DI, 13)}-{_t(_AN, 24)}", "slack-bot-token"),
                _Secret(f"SENDGRID_API_KEY=SG.{_t(_URL, 22)}.{_t(_URL, 43)}", "sendgrid"),
                "CI=true",
            ],
            1,
            truth,
        ),
        _file(
            "app/config/deploy-credentials.env",
            [
                _Secret(f"DEPLOY_TOKEN=ghp_{_t(_AN, 36)}", "github-pat (deleted)"),
                _Secret(f"ANTHROPIC_API_KEY=sk-ant-api03-{_t(_URL, 93)}AA", "anthropic (deleted)"),
            ],
            1,
            truth,
            deleted=True,
        ),
        _file(
            "app/config/rotated.yaml",
            ["openai:", _Secret(f"  api_key: sk-proj-{_t(_URL, 74)}T3BlbkFJ{_t(_URL, 74)}", "openai (replaced)")],
            1,
            truth,
            deleted=True,
        ),
    ]
    cleanup: list[EntrySpec] = [
        Whiteout("app/config/deploy-credentials.env"),
        File("app/config/rotated.yaml", b"openai:\n  api_key: ${OPENAI_API_KEY}\n"),
    ]
    layers = [
        Layer(entries=app, created_by="COPY app/ /app/ # planted secrets"),
        Layer(entries=cleanup, created_by="RUN rm app/config/deploy-credentials.env # and rotate"),
    ]
    return layers, truth


_LAYERS, GROUND_TRUTH = _layers()


@dataclass(frozen=True)
class PlantedImage:
    archive: Path
    oci: Path
    refs: ImageRefs

    @property
    def archive_ref(self) -> str:
        return f"docker-archive:{self.archive}"

    @property
    def oci_ref(self) -> str:
        return f"oci:{self.oci}:{TAG}"


def _build(dest: Path) -> None:
    from tests.support import debian

    base = Layer(root=debian.debian_rootfs(), created_by="debootstrap --variant=minbase bookworm")
    refs = build_image(
        [base, *_LAYERS], work=dest / "work", oci_dir=dest / "oci", archive=dest / "planted.tar", tag=TAG
    )
    (dest / "refs.json").write_text(json.dumps({"diff_ids": list(refs.diff_ids)}))
    import shutil

    shutil.rmtree(dest / "work")


def planted_image() -> PlantedImage:
    """Build (once, cached under ``.cache/test-images``) and return the planted image."""
    dest = cached("secrets-planted", VERSION, _build)
    diff_ids = tuple(json.loads((dest / "refs.json").read_text())["diff_ids"])
    refs = ImageRefs(dest / "oci", dest / "planted.tar", TAG, "", "", diff_ids, ())
    return PlantedImage(dest / "planted.tar", dest / "oci", refs)


def write_tree(root: Path) -> list[Planted]:
    """Write layer 1's files (the application, no OS) under ``root`` for ``dir:`` scans; returns the
    planted secrets of those files (layer 1's, the deleted ones included: in a tree they are present)."""
    for entry in _LAYERS[0].entries:
        target = root / entry.path
        if isinstance(entry, Dir):
            target.mkdir(parents=True, exist_ok=True)
        elif isinstance(entry, File):
            target.parent.mkdir(parents=True, exist_ok=True)
            assert isinstance(entry.data, bytes)
            target.write_bytes(entry.data)
    return [p for p in GROUND_TRUTH if p.layer == 1]
