"""The built-in rule table: every rule finds its made-up positive and ignores its decoy; the schema holds
for every packaged rule file; the keyword finders agree."""

from __future__ import annotations

import re

import jsonschema
import pytest
import yaml
from tests.secrets.cases import CASE_PATHS, CASES

from garrison.secrets import SecretScanner, load_rules
from garrison.secrets.engine import keyword_finder
from garrison.secrets.rules import RULES_DIR, builtin_data, schema

RULES = load_rules()
SCANNER = SecretScanner(RULES)
RULE_IDS = [r.id for r in RULES.rules]


def _rules_found(text: str, path: str = "app/config/settings.env") -> set[str]:
    return {s.rule_id for s in SCANNER.scan(path, text.encode())}


def test_every_rule_has_a_case() -> None:
    assert sorted(CASES) == sorted(RULE_IDS)


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_positive(rule_id: str) -> None:
    positive, _ = CASES[rule_id]
    path = CASE_PATHS.get(rule_id, "app/config/settings.env")
    found = [s for s in SCANNER.scan(path, positive.encode()) if s.rule_id == rule_id]
    assert found, f"{rule_id} missed its positive"
    runs = re.findall(r"[A-Za-z0-9+/_~.-]{12,}", positive)
    for s in found:
        # Masked: at most four characters of the secret are left; no long run of the input survives.
        assert len(s.masked.replace("*", "")) <= 4
        assert not [r for r in runs if r in repr(s)]
        assert s.line >= 1


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_decoy(rule_id: str) -> None:
    _, decoy = CASES[rule_id]
    assert rule_id not in _rules_found(decoy, CASE_PATHS.get(rule_id, "app/config/settings.env"))


def test_schema_validates_every_packaged_rule_file() -> None:
    validator = jsonschema.Draft202012Validator(schema())
    folder = RULES_DIR
    files = [f for f in folder.iterdir() if f.name.endswith((".yaml", ".yml"))]
    assert files
    for f in files:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(f.read_text()))]
        assert errors == [], f.name


def test_schema_rejects_a_broken_rule() -> None:
    validator = jsonschema.Draft202012Validator(schema())
    bad = {"rules": [{"id": "x", "regex": "a", "assignment": {"names": ["ab"], "value": "b"}}]}
    assert list(validator.iter_errors(bad))
    assert list(validator.iter_errors({"rules": [{"id": "x"}]}))
    assert list(validator.iter_errors({"rules": [{"id": "x", "regex": "a", "severity": "urgent"}]}))
    assert list(validator.iter_errors({"allow-rules": [{"id": "x"}]}))


def test_builtin_file_is_complete() -> None:
    data = builtin_data()
    assert re.fullmatch(r"\d{4}\.\d+\.\d+", data["version"])
    ids = [r["id"] for r in data["rules"]] + [a["id"] for a in data["allow-rules"]]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for r in data["rules"]:
        assert r.get("category") and r.get("title") and r.get("severity"), r["id"]
        assert r.get("keywords") or r.get("assignment"), f"{r['id']} has no keyword pre-filter"
        for kw in r.get("keywords", ()):
            assert kw == kw.lower(), f"{r['id']}: keyword {kw!r} is not lower-case"
    for rule in RULES.rules:
        # A regex with context around the secret (an assignment, a URL) names the secret part.
        context = any(c in rule.pattern.pattern for c in (b"://", b"[:=]", b"(?::=|=>|=|:)", b"\\s*=", b"key["))
        assert not context or rule.group in rule.pattern.groupindex or rule.id == "gcp-service-account", rule.id


def test_rule_keywords_occur_in_their_positives() -> None:
    # The pre-filter must never hide a rule's own positive: one keyword occurs in it.
    for rule in RULES.rules:
        text = CASES[rule.id][0].lower().encode()
        assert any(k in text for k in rule.keywords), rule.id


def test_keyword_finders_agree() -> None:
    keywords = sorted({k for r in RULES.rules for k in r.keywords})
    native = keyword_finder(keywords)
    loop = keyword_finder(keywords, native=False)
    texts = [p.lower().encode() + b"\n" + d.lower().encode() for p, d in CASES.values()]
    texts.append(b"password password\npass-word sk sk_live_ ghp_ghp_")
    for text in texts:
        a = {k: sorted(v) for k, v in native(text).items()}
        b = {k: sorted(v) for k, v in loop(text).items()}
        assert a == b


def test_aws_documentation_keys_are_never_reported() -> None:
    text = "aws_access_key_id=AKIAIOSFODNN7EXAMPLE\naws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    assert _rules_found(text) == set()


def test_generic_rule_gives_way_to_a_specific_one() -> None:
    positive = CASES["aws-secret-access-key"][0]
    assert _rules_found(positive) == {"aws-secret-access-key"}


def test_entropy_threshold_drops_a_repetitive_value() -> None:
    assert _rules_found("aws_secret_access_key = " + "ab" * 20 + "\n") == set()
    assert "generic-password" not in _rules_found("DB_PASSWORD=aaaaaaaaaaaa1\n")


@pytest.mark.parametrize(
    "text",
    [
        "password: ${DB_PASSWORD}\n",
        'password = "{{ vault_db_password }}"\n',
        "api_key=<your-api-key>\n",
        "password=%(db_password)s\n",
        "SECRET_KEY=$SECRET_KEY\n",
        "client_secret: your_client_secret_here\n",
        "password = self.password\n",
        "password=os.environ.get\n",
        "  secret: process.env.SECRET_VALUE,\n",
        "password: required\n",
    ],
)
def test_templates_and_code_are_not_secrets(text: str) -> None:
    assert _rules_found(text) == set()


def test_allowed_paths_are_not_scanned() -> None:
    positive = CASES["github-pat"][0]
    for path in ("usr/share/doc/foo/README", "app/tests/fixtures/token.env", "app/.env.example", "docs/setup.md"):
        assert _rules_found(positive, path) == set(), path
    assert _rules_found(positive, "app/.env") == {"github-pat"}


def test_line_numbers() -> None:
    text = "a=1\n\n# c\nGITHUB_TOKEN=" + CASES["github-pat"][0].split("=", 1)[1]
    (found,) = SCANNER.scan("x.env", text.encode())
    assert found.line == 4
    crlf = text.replace("\n", "\r\n").encode()
    assert [s.line for s in SCANNER.scan("x.env", crlf)] == [4]
