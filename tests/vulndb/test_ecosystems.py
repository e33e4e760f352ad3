"""The ecosystem table (garrison.model.ecosystem) against what the rest of garrison resolves from it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from garrison.inventory import purl
from garrison.model import Package, PackageType
from garrison.model.ecosystem import ECOSYSTEMS, for_osv, from_purl_type, mirror_ecosystems, scheme_name
from garrison.vulndb.fetch import OPTIONAL_ECOSYSTEMS, REQUIRED_ECOSYSTEMS
from garrison.vulndb.versions import SCHEMES, scheme_for


def test_every_type_has_a_row_whose_scheme_exists() -> None:
    assert set(ECOSYSTEMS) == set(PackageType)
    for ptype, row in ECOSYSTEMS.items():
        assert row.type is ptype and ptype.ecosystem is row
        assert row.scheme in SCHEMES, ptype
        assert row.is_os is bool(row.distributions) is (not row.osv)
        for eco in (row.osv, *row.distributions):
            if eco:
                assert for_osv(f"{eco}:1") is row and scheme_for(eco).name == row.scheme


@pytest.mark.parametrize(
    ("builder", "args", "ptype"),
    [
        (purl.pypi, ("Foo_Bar", "1"), PackageType.PYTHON),
        (purl.golang, ("github.com/a/b", "v1.0.0"), PackageType.GO),
        (purl.maven, ("org.x", "y", "1"), PackageType.JAVA),
        (purl.npm, ("@s/n", "1"), PackageType.NPM),
        (purl.gem, ("rack", "1"), PackageType.GEM),
        (purl.cargo, ("serde", "1"), PackageType.CARGO),
        (purl.nuget, ("Newtonsoft.Json", "1"), PackageType.NUGET),
        (purl.composer, ("a/b", "1"), PackageType.COMPOSER),
        (purl.deb, ("bash", "5"), PackageType.DEB),
        (purl.apk, ("musl", "1"), PackageType.APK),
        (purl.rpm, ("bash", "5-1"), PackageType.RPM),
    ],
)
def test_package_type_values_are_the_purl_types(
    builder: Callable[..., str], args: tuple[str, ...], ptype: PackageType
) -> None:
    spelled = builder(*args)
    purl_type = spelled.split(":", 1)[1].split("/", 1)[0]
    assert purl_type == ptype.value
    assert from_purl_type(purl_type) is ptype


def test_lookups_derived_from_the_table() -> None:
    assert from_purl_type("PyPI") is PackageType.PYTHON and from_purl_type("swift") is None
    assert scheme_name("Debian:12") == "dpkg" and scheme_name("Hex") == "semver"
    assert scheme_name("NoSuchEcosystem") == "generic"
    assert mirror_ecosystems() == (REQUIRED_ECOSYSTEMS, OPTIONAL_ECOSYSTEMS)
    assert set(REQUIRED_ECOSYSTEMS) == {"Go", "crates.io", "PyPI", "RubyGems", "Packagist", "npm", "Debian", "Alpine"}
    assert set(OPTIONAL_ECOSYSTEMS) == {"Maven", "NuGet"}
    assert purl.DEFAULT_OS_NAMESPACE == {
        PackageType.DEB: "debian",
        PackageType.APK: "alpine",
        PackageType.RPM: "redhat",
    }


def test_package_identity_follows_the_registry() -> None:
    def key(name: str, ptype: PackageType, namespace: str = "") -> tuple[str, str, str, str]:
        return Package(name, "1.0", ptype, namespace=namespace).key

    assert key("Django", PackageType.PYTHON) == key("django", PackageType.PYTHON) == ("pypi", "", "django", "1.0")
    assert key("zope.interface", PackageType.PYTHON) == key("Zope_Interface", PackageType.PYTHON)
    assert key("serde_json", PackageType.CARGO) == key("serde-json", PackageType.CARGO)
    assert key("RedCloth", PackageType.GEM) != key("redcloth", PackageType.GEM)
    assert key("core", PackageType.JAVA, "org.a") != key("core", PackageType.JAVA, "org.b")
    assert key("bash", PackageType.DEB) != key("bash", PackageType.APK)
