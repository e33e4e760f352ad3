"""The engine around the rules: masking, user rule files (garrison's and Trivy's), Go regex translation,
the analyzer's file selection and version, the applier's layer handling and the layer cache."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tests.secrets.cases import CASES

from garrison.errors import InputError
from garrison.inventory.apply import LayerResult, apply_layers
from garrison.inventory.base import AnalysisResult, FileInput
from garrison.inventory.cache import layer_from_json, layer_to_json
from garrison.model import Artifact, SourceKind
from garrison.model.common import Severity
from garrison.model.secret import Secret
from garrison.secrets import SecretAnalyzer, SecretScanner, load_rules, mask, scan_bytes, shannon_entropy
from garrison.secrets.rules import go_to_python

GITHUB = CASES["github-pat"][0]  # "GITHUB_TOKEN=ghp_…\n"


# ------------------------------------------------------------------------------------------------ masking


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("ABCDEFGHIJKLMNOPQRST", "ABCD****************"),
        ("short-pass", "********"),
        ("fifteen-chars-x", "********"),
        ("sixteen-chars-xx", "sixt************"),
        ("x" * 500, "xxxx" + "*" * 32),
        ("MIIE\nabcd\nefgh\nijkl\nmnop", "MIIE****************"),
    ],
)
def test_mask(secret: str, masked: str) -> None:
    assert mask(secret) == masked


def test_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)


def test_the_secret_is_not_in_results_warnings_or_cache() -> None:
    raw = GITHUB.split("=", 1)[1].strip()
    analyzer = SecretAnalyzer()
    result = analyzer.analyze(FileInput("app/.env", GITHUB.encode()))
    assert [s.rule_id for s in result.secrets] == ["github-pat"]
    layer = LayerResult(diff_id="sha256:" + "a" * 64, files={"app/.env": result})
    dumped = json.dumps(layer_to_json(layer))
    for text in (repr(result), dumped, repr(apply_layers(_artifact(), [layer]))):
        assert raw not in text and raw[4:20] not in text


# ------------------------------------------------------------------------------------------------ user rules


def _write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "trivy-secret.yaml"
    f.write_text(text)
    return f


def test_trivy_secret_config(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path,
        r"""
rules:
  - id: acme-token
    category: Acme
    title: Acme deploy token
    severity: high
    keywords: [ACME_]
    regex: (?i)acme_token\s*=\s*(?P<secret>ACME_(?i)[a-z0-9]{24})
    allow-rules:
      - id: acme-test
        regex: ACME_TEST
disable-rules:
  - github-pat
allow-rules:
  - id: skip-fixtures
    path: ^/srv/fixtures/
""",
    )
    rules = load_rules(cfg)
    scanner = SecretScanner(rules)
    acme = "ACME_TOKEN = ACME_" + "q7Zr2Lm9Xk4Wp1Vt8Ns3Bd6F\n"
    assert [s.rule_id for s in scanner.scan("srv/app/.env", (acme + GITHUB).encode())] == ["acme-token"]
    (found,) = scanner.scan("srv/app/.env", acme.encode())
    assert (found.severity, found.category, found.masked) == (Severity.HIGH, "Acme", "ACME" + "*" * 25)
    assert scanner.scan("srv/app/.env", b"ACME_TOKEN = ACME_TEST00000000000000000000\n") == []
    assert scanner.scan("srv/fixtures/.env", acme.encode()) == []
    assert rules.version.endswith("+user") and rules.digest != load_rules().digest


def test_enable_builtin_rules_keeps_only_those(tmp_path: Path) -> None:
    rules = load_rules(_write(tmp_path, "enable-builtin-rules: [aws-access-key-id]\n"))
    assert [r.id for r in rules.rules] == ["aws-access-key-id"]


def test_user_rule_replaces_a_builtin_and_allow_rules_can_be_disabled(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path,
        "disable-allow-rules: [markdown]\nrules:\n  - id: github-pat\n    severity: LOW\n"
        "    keywords: [ghp_]\n    regex: 'ghp_[A-Za-z0-9]{36}'\n",
    )
    scanner = SecretScanner(load_rules(cfg))
    (found,) = scanner.scan("docs/tokens.md", GITHUB.encode())
    assert (found.rule_id, found.severity) == ("github-pat", Severity.LOW)


def test_exclude_block(tmp_path: Path) -> None:
    cfg = _write(tmp_path, "exclude-block:\n  regexes: ['(?s)# BEGIN FIXTURES.*?# END FIXTURES']\n")
    scanner = SecretScanner(load_rules(cfg))
    text = f"# BEGIN FIXTURES\n{GITHUB}# END FIXTURES\n{GITHUB}"
    assert [s.line for s in scanner.scan("app/.env", text.encode())] == [4]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [{id: x}]", "rules/0"),
        ("rules:\n  - {id: x, regex: '(unclosed'}\n", "invalid regex"),
        ("rules: [\n", "not valid YAML"),
        ("colour: red\n", "Additional properties"),
        ("rules:\n  - {id: x, regex: a, severity: urgent}\n", "severity"),
    ],
)
def test_bad_user_files_are_input_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as err:
        load_rules(_write(tmp_path, text))
    assert "\n" not in str(err.value)


def test_missing_user_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("go", "python"),
    [
        ("(?i)abc", "(?i:abc)"),
        ("(LTAI)(?i)[a-z0-9]{20}", "(LTAI)(?i:[a-z0-9]{20})"),
        ("(a(?i)b|c)d", "(a(?i:b)|(?i:c))d"),
        ("[(?i)]x", "[(?i)]x"),
        (r"end\z", r"end\Z"),
        (r"[\]]x(?i)y", r"[\]]x(?i:y)"),
    ],
)
def test_go_to_python(go: str, python: str) -> None:
    assert go_to_python(go) == python
    re.compile(python)


# ------------------------------------------------------------------------------------------------ analyzer


def test_analyzer_wants_text_sized_files_only() -> None:
    a = SecretAnalyzer(max_bytes=1024)
    assert a.wants("app/.env", 100, 0o644)
    assert a.wants("usr/local/bin/deploy", 100, 0o755)
    assert not a.wants("app/.env", 5, 0o644)  # too small to hold a secret
    assert not a.wants("app/dump.env", 2048, 0o644)  # over the cap
    for binary in ("app/logo.png", "usr/lib64/libssl.so.3", "opt/app/lib/app.jar", "app/x.tar.gz", "a.pyc"):
        assert not a.wants(binary, 100, 0o644), binary
    assert not a.wants("usr/share/doc/openssl/README", 100, 0o644)
    assert a.wants("var/lib/dpkg/info/openssl.list", 100, 0o644)
    assert not a.wants("var/lib/dpkg/info/openssl.md5sums", 100, 0o644)


def test_analyzer_skips_binaries_and_reads_file_lists() -> None:
    a = SecretAnalyzer()
    elf = b"\x7fELF\x02\x01\x01\x00" + GITHUB.encode()
    assert a.analyze(FileInput("usr/local/bin/tool", elf)).secrets == ()
    assert scan_bytes("usr/local/bin/tool", elf) == []
    lst = a.analyze(FileInput("var/lib/dpkg/info/acme.list", b"/.\n/etc\n/etc/acme/token.env\n"))
    assert lst.system_files == ("etc", "etc/acme/token.env") and lst.secrets == ()


def test_analyzer_version_follows_the_rules(tmp_path: Path) -> None:
    builtin = SecretAnalyzer()
    assert builtin.version == SecretAnalyzer().version
    user = SecretAnalyzer(load_rules(_write(tmp_path, "disable-rules: [jwt-token]\n")))
    assert user.version != builtin.version
    assert SecretAnalyzer(max_bytes=1024).version != builtin.version
    assert 0 < builtin.version < 2**31


# ------------------------------------------------------------------------------------------------ applier and cache


def _artifact() -> Artifact:
    return Artifact(name="test", kind=SourceKind.OCI)


def _secret_file(path: str) -> AnalysisResult:
    return SecretAnalyzer().analyze(FileInput(path, GITHUB.encode()))


def test_applier_reports_every_layer_with_deleted_flags() -> None:
    d = ["sha256:" + c * 64 for c in "abcd"]
    layers = [
        LayerResult(d[0], files={"app/a.env": _secret_file("app/a.env"), "app/b.env": _secret_file("app/b.env")}),
        LayerResult(d[1], files={"app/b.env": AnalysisResult(), "app/c.env": _secret_file("app/c.env")}),
        LayerResult(
            d[2],
            whiteouts=("app/a.env",),
            files={p: _secret_file(p) for p in ("opt/acme/defaults.env", "etc/acme/token.env")},
        ),
        LayerResult(
            d[3],
            files={
                "var/lib/dpkg/info/acme.list": AnalysisResult(
                    system_files=("/opt/acme/defaults.env", "/etc/acme/token.env")
                )
            },
        ),
    ]
    inv = apply_layers(_artifact(), layers)
    got = [(s.path, s.layer, s.deleted) for s in inv.secrets]
    # opt/acme/defaults.env is the OS package's own file: dropped; etc/acme/token.env is a conffile: kept.
    assert got == [
        ("app/a.env", d[0], True),
        ("app/b.env", d[0], True),
        ("app/c.env", d[1], False),
        ("etc/acme/token.env", d[2], False),
    ]


def test_cache_round_trip_keeps_secrets() -> None:
    s = Secret("github-pat", "GitHub", "GitHub Personal Access Token", Severity.CRITICAL, "app/.env", 3, "ghp_****")
    layer = LayerResult("sha256:" + "e" * 64, files={"app/.env": AnalysisResult(secrets=(s,))})
    back = layer_from_json(json.loads(json.dumps(layer_to_json(layer))))
    assert back.files["app/.env"].secrets == (s,)
