"""Kubernetes' own Pod Security Standards conformance fixtures (pod-security-admission test data, in
``../shared/reference/pss/``): every pod must pass or fail its level exactly as pod-security-admission
decides, with garrison's pss-baseline and pss-restricted controls (restricted includes baseline)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.shared import shared_path

from garrison.posture.controls import builtin_controls, select
from garrison.posture.engine import evaluate
from garrison.posture.inputs import load_path

PSS = shared_path("reference", "pss")
needs_pss = pytest.mark.skipif(not PSS.is_dir(), reason=f"no PSS conformance fixtures at {PSS}")


def _cases() -> list[tuple[str, str, Path]]:
    if not PSS.is_dir():
        return []
    return [
        (level, verdict, f)
        for level in ("baseline", "restricted")
        for verdict in ("pass", "fail")
        for f in sorted((PSS / level).glob(f"v*/{verdict}/*.yaml"))
    ]


CASES = _cases()


@needs_pss
def test_fixtures_present() -> None:
    # 148 files at v1.37: a checkout that lost some would otherwise pass with fewer cases.
    assert len(CASES) >= 148
    assert {lvl for lvl, _, _ in CASES} == {"baseline", "restricted"}


@needs_pss
@pytest.mark.parametrize(("level", "verdict", "path"), CASES, ids=[f"{c[0]}/{c[1]}/{c[2].name}" for c in CASES])
def test_pss_fixture(level: str, verdict: str, path: Path) -> None:
    controls = select(builtin_controls(), [f"pss-{level}"])
    loaded = load_path(path)
    assert len(loaded.resources) == 1, loaded.warnings
    findings = evaluate(loaded.resources, controls).findings
    if verdict == "pass":
        assert findings == (), [(f.rule.id, f.detail.path, f.detail.actual) for f in findings]
    else:
        assert findings, f"{path.name} must fail {level}"
        # The failing fixture is named after the PSA check it exercises; the finding must come from
        # a control that names that check (not from an unrelated one that happens to fire).
        check = path.stem.rstrip("0123456789")
        named = {i.lower() for f in findings for i in f.detail.equivalents if i.startswith("pss:")}
        assert any(check.replace("_", "") in n.replace("_", "").replace("pss:", "") for n in named), (check, named)


def test_pss_selection_is_the_levels() -> None:
    baseline = {c.id for c in select(builtin_controls(), ["pss-baseline"])}
    restricted = {c.id for c in select(builtin_controls(), ["pss-restricted"])}
    assert baseline < restricted
    assert len(baseline) == 12 and len(restricted) == 19
