"""Secret scanning of real images built with the test image writer: planted credentials are found with
their layer, the deleted one included; decoys, OS files and binaries are not reported; a warm scan
returns the same from the layer cache; ``dir:`` trees are scanned too."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.secrets.planted import GROUND_TRUTH, Planted, planted_image, write_tree
from tests.support.images import BuiltImages

from garrison.config import Settings
from garrison.inventory.scan import scan_reference
from garrison.model import Inventory
from garrison.progress import NO_PROGRESS
from garrison.secrets import SecretAnalyzer

pytestmark = pytest.mark.slow


def _scan(ref: str, cache: Path, *, packages: bool = False) -> Inventory:
    settings = Settings(cache_dir=cache)
    return scan_reference(ref, settings, NO_PROGRESS, packages=packages, extra=(SecretAnalyzer(),))


def _match(inv: Inventory, truth: list[Planted]) -> tuple[list[Planted], list[str]]:
    """(planted secrets not found, findings that are no planted secret)."""
    missed = [t for t in truth if not any(t.covers(s.path, s.line) for s in inv.secrets)]
    false = [f"{s.rule_id} {s.path}:{s.line}" for s in inv.secrets if not any(t.covers(s.path, s.line) for t in truth)]
    return missed, false


@pytest.mark.parametrize("form", ["archive", "oci"])
def test_planted_image(form: str, tmp_path: Path) -> None:
    image = planted_image()
    ref = image.archive_ref if form == "archive" else image.oci_ref
    inv = _scan(ref, tmp_path)
    missed, false = _match(inv, GROUND_TRUTH)
    assert missed == [] and false == []
    diff_ids = image.refs.diff_ids
    for t in GROUND_TRUTH:
        (s,) = [s for s in inv.secrets if t.covers(s.path, s.line)]
        assert (s.layer, s.deleted) == (diff_ids[t.layer], t.deleted), t
        assert s.rules_version and len(s.masked.replace("*", "")) <= 4
    deleted = {s.path for s in inv.secrets if s.deleted}
    assert deleted == {"app/config/deploy-credentials.env", "app/config/rotated.yaml"}


def test_warm_scan_is_served_by_the_cache(tmp_path: Path) -> None:
    image = planted_image()
    cold = _scan(image.archive_ref, tmp_path)
    cached = list((tmp_path / "layers").glob("*.json"))
    assert len(cached) == 3
    warm = _scan(image.archive_ref, tmp_path)
    assert warm.secrets == cold.secrets
    # Another rule set (another analyzer version) never reads those entries.
    from garrison.secrets import load_rules

    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("disable-rules: [github-pat]\n")
    inv = scan_reference(
        image.archive_ref,
        Settings(cache_dir=tmp_path),
        NO_PROGRESS,
        packages=False,
        extra=(SecretAnalyzer(load_rules(rules_file)),),
    )
    assert "github-pat" not in {s.rule_id for s in inv.secrets}
    assert len(list((tmp_path / "layers").glob("*.json"))) == 6


def test_with_package_analyzers_the_same_secrets(tmp_path: Path) -> None:
    image = planted_image()
    alone = _scan(image.archive_ref, tmp_path / "a")
    both = _scan(image.archive_ref, tmp_path / "b", packages=True)
    assert both.secrets == alone.secrets
    assert both.packages  # the Debian base's dpkg packages


def test_app_image_has_no_secrets(test_images: BuiltImages, tmp_path: Path) -> None:
    # Debian, python3, nodejs, a venv with Django/pip/requests and node_modules: nothing to report.
    inv = _scan(test_images.app_archive_ref, tmp_path)
    assert [f"{s.rule_id} {s.path}:{s.line}" for s in inv.secrets] == []


def test_dir_scan(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    truth = write_tree(root)
    (root / "usr/share/doc/app").mkdir(parents=True)
    (root / "usr/share/doc/app/token.txt").write_text((root / "app/.env").read_text())
    inv = _scan(f"dir:{root}", tmp_path / "cache")
    missed, false = _match(inv, truth)
    assert missed == [] and false == []
    assert {s.layer for s in inv.secrets} == {""} and not any(s.deleted for s in inv.secrets)
