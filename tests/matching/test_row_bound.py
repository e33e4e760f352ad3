"""The database's per-row "bound" shortcut (garrison.vulndb.store.row_bound): matching a real database built
from the entries must report exactly what matching the same database with every bound removed reports."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from tests.support.osvdb import build_test_db

from garrison.matching.matcher import match_inventory
from garrison.model import Artifact, Inventory, OSInfo, Package, PackageType, SourceKind
from garrison.model.vuln import Affected, AffectedRange, RangeEvent
from garrison.vulndb.store import AdvisoryDB, Candidates, encode_affected, encode_group, row_bound


def rng(*events: tuple[str, str], type_: str = "ECOSYSTEM") -> AffectedRange:
    return AffectedRange(type_, tuple(RangeEvent(k, v) for k, v in events))


def aff(aid: str, *ranges: AffectedRange, versions: tuple[str, ...] = (), eco: str = "PyPI") -> Affected:
    return Affected(aid, eco, "pkg", tuple(ranges), versions)


def row(entries: Iterable[Affected], eco: str = "PyPI") -> Candidates:
    data = encode_group([encode_affected(e) for e in entries])
    return Candidates(data, row_bound(eco, data))


class Pair:
    """Two databases built from the same entries: as built, and with every row's bound removed (so matching
    evaluates every range)."""

    def __init__(self, directory: Path, entries: list[Affected]) -> None:
        self.bounded = build_test_db(directory / "bounded", entries)
        unbounded = directory / "unbounded.db"
        shutil.copyfile(self.bounded.path, unbounded)
        with closing(sqlite3.connect(unbounded)) as conn:
            conn.execute("UPDATE affected SET bound = NULL")
            conn.commit()
        self.unbounded = AdvisoryDB.open(unbounded)

    def close(self) -> None:
        self.bounded.close()
        self.unbounded.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Callable[[list[Affected]], Pair]]:
    made: list[Pair] = []

    def make(entries: list[Affected]) -> Pair:
        made.append(Pair(tmp_path / str(len(made)), entries))
        return made[-1]

    yield make
    for p in made:
        p.close()


def _inv(version: str, ptype: PackageType = PackageType.PYTHON) -> Inventory:
    pkg = Package("pkg", version, ptype, source_name="pkg" if ptype is PackageType.DEB else "")
    return Inventory(Artifact("t", SourceKind.DIR), OSInfo("debian", "12", "bookworm"), (pkg,))


def _outcome(db: AdvisoryDB, version: str, ptype: PackageType = PackageType.PYTHON) -> tuple[Any, ...]:
    r = match_inventory(_inv(version, ptype), db)
    return (
        [(f.advisory.id, f.fixed_versions, f.match.matched_range if f.match else "") for f in r.findings],
        r.warnings,
        len(r.not_comparable),
    )


CASES: list[tuple[str, list[Affected]]] = [
    (
        "fixed only",
        [aff("A", rng(("introduced", "0"), ("fixed", "1.5"))), aff("B", rng(("introduced", "0"), ("fixed", "2.0")))],
    ),
    (
        "two intervals",
        [aff("A", rng(("introduced", "1.0"), ("fixed", "1.2"), ("introduced", "2.0"), ("fixed", "2.1")))],
    ),
    ("open interval", [aff("A", rng(("introduced", "1.0"), ("fixed", "1.2"), ("introduced", "3.0")))]),
    ("last_affected", [aff("A", rng(("introduced", "0"), ("last_affected", "2.0")))]),
    (
        "last_affected below a fix",
        [
            aff("A", rng(("introduced", "0"), ("last_affected", "1.0"))),
            aff("B", rng(("introduced", "0"), ("fixed", "2.0"))),
        ],
    ),
    ("limit", [aff("A", rng(("introduced", "0"), ("limit", "3.0")))]),
    ("limit inside an interval", [aff("A", rng(("introduced", "1.0"), ("limit", "2.0"), ("fixed", "3.0")))]),
    (
        "last_affected at the top",
        [
            aff("A", rng(("introduced", "0"), ("fixed", "1.0"))),
            aff("B", rng(("introduced", "2.0"), ("last_affected", "2.5"))),
        ],
    ),
    ("fixed equals last_affected", [aff("A", rng(("introduced", "0"), ("last_affected", "2.0"), ("fixed", "2.0")))]),
    ("listed above the fix", [aff("A", rng(("introduced", "0"), ("fixed", "1.0")), versions=("0.9", "2.5"))]),
    ("versions only", [aff("A", versions=("1.0", "2.0", "3.0"))]),
    ("git only", [aff("A", rng(("introduced", "abc"), type_="GIT"))]),
    ("bad event", [aff("A", rng(("introduced", "0"), ("fixed", "not a version!")))]),
    ("semver range type", [aff("A", rng(("introduced", "0"), ("fixed", "1.9"), type_="SEMVER"))]),
]
VERSIONS = ["0.1", "0.9", "1.0", "1.1", "1.2", "1.5", "1.9", "2.0", "2.0.0", "2.05", "2.1", "2.5", "3.0", "3.1", "10"]


@pytest.mark.parametrize(("label", "entries"), CASES, ids=[c[0] for c in CASES])
def test_shortcut_changes_nothing(label: str, entries: list[Affected], pair: Callable[[list[Affected]], Pair]) -> None:
    dbs = pair(entries)
    assert dbs.bounded.candidates("PyPI", ["pkg"])["pkg"].bound == row(entries).bound  # what the build stored
    for version in VERSIONS:
        assert _outcome(dbs.bounded, version) == _outcome(dbs.unbounded, version), version


def test_bounds() -> None:
    def bound(*entries: Affected, eco: str = "PyPI") -> str | None:
        return row(entries, eco).bound

    fixed = aff("A", rng(("introduced", "0"), ("fixed", "1.5")))
    assert bound(fixed, aff("B", rng(("introduced", "0"), ("fixed", "1.10")))) == "1.10"
    assert bound(aff("A", rng(("introduced", "1.0"), ("introduced", "3.0"), ("fixed", "2.0")))) is None  # open
    assert bound(aff("A", rng(("introduced", "0"), ("last_affected", "2.0")))) is None  # 2.0 itself is affected
    # limit caps the range: nothing at or above it is affected
    assert bound(aff("A", rng(("introduced", "0"), ("limit", "3.0")))) == "3.0"
    assert bound(aff("A", rng(("introduced", "0"), ("limit", "3.0"))), aff("B", rng(("introduced", "2.0")))) is None
    # last_affected below the highest event closes before it
    below = aff("A", rng(("introduced", "0"), ("last_affected", "1.0")))
    assert bound(below, aff("B", rng(("introduced", "0"), ("fixed", "2.0")))) == "2.0"
    assert bound(fixed, aff("B", rng(("introduced", "0"), ("fixed", "junk!")))) is None  # must warn
    assert bound(fixed, aff("B", versions=("1.0",))) is None  # compared by key, not by string
    assert bound(fixed, aff("B", rng(("introduced", "x"), type_="GIT"))) == "1.5"
    assert bound(aff("A", rng(("introduced", "0"), ("fixed", "1.0")), versions=("0.9", "2.5"))) == "1.0"
    deb = aff("A", rng(("introduced", "0"), ("fixed", "1:1.0-1")), eco="Debian:12")
    assert bound(deb, eco="Debian:12") == "1:1.0-1"
    # a versions list holding a separator character is stored as JSON: no shortcut
    assert bound(aff("A", rng(("introduced", "0"), ("fixed", "1.0")), versions=("0.9\n",))) is None


def test_may_list() -> None:
    c = row([aff("A", rng(("introduced", "0"), ("fixed", "1.0")), versions=("0.9", "2.5"))])
    assert c.may_list("2.5") and c.may_list("0.9")
    assert not c.may_list("2") and not c.may_list("1.0")


def test_debian_rows(pair: Callable[[list[Affected]], Pair]) -> None:
    entries = [
        aff("DSA-1", rng(("introduced", "0"), ("fixed", "1.2-3+deb12u1")), eco="Debian:12"),
        aff("DSA-2", rng(("introduced", "0"), ("fixed", "1:0.9-1")), eco="Debian:12"),
        aff("DSA-3", rng(("introduced", "0"), ("fixed", "1.2-3~bpo1")), eco="Debian:12"),
    ]
    assert row(entries, "Debian:12").bound == "1:0.9-1"
    dbs = pair(entries)
    for version in ["1.2-3", "1.2-3+deb12u1", "1:0.8-1", "1:0.9-1", "1:0.9-1+b1", "2:0.1-1", "1.2-3~bpo1"]:
        deb = PackageType.DEB
        assert _outcome(dbs.bounded, version, deb) == _outcome(dbs.unbounded, version, deb), version
    # at or above the bound the row is never decoded
    fresh = pair(entries).bounded
    assert match_inventory(_inv("1:0.9-1", PackageType.DEB), fresh).findings == ()
    assert fresh.candidates("Debian:12", ["pkg"])["pkg"]._decoded is None
