"""Merge per-layer analysis results into the image's final view (the "applier").

Each layer is analysed on its own (and cached on its own), so what a layer *says* is independent of
the layers below it. Only here are the layers stacked: upper files replace lower ones, whiteouts and
opaque directories delete lower paths, and every surviving package is attributed to the layer that
introduced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from garrison.inventory.base import AnalysisResult
from garrison.inventory.os.release import merge as merge_release
from garrison.inventory.purl import with_os
from garrison.model import Artifact, Inventory, OSInfo, Package
from garrison.model.secret import Secret

#: Where the OS identity is read from, best first (``/etc/os-release`` may be edited by the image).


@dataclass(frozen=True)
class LayerResult:
    """What one layer contains, as far as the analyzers care. Independent of every other layer."""

    diff_id: str
    #: Result per analysed path (an empty result still replaces a lower layer's version of the file).
    files: dict[str, AnalysisResult] = field(default_factory=dict)
    #: Paths deleted from lower layers by ``.wh.NAME`` markers.
    whiteouts: tuple[str, ...] = ()
    #: Directories whose lower-layer contents are hidden by ``.wh..wh..opq``.
    opaque_dirs: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: Paths an analyzer would want that this layer turned into a non-file (a symlink, a directory):
    #: the lower layers' file at exactly that path is gone, nothing below it.
    replaced: tuple[str, ...] = ()


def _under(path: str, prefix: str) -> bool:
    return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")


def _stack(layers: list[LayerResult]) -> dict[str, list[int]]:
    """Path → indexes of the layers holding the current chain of versions of that path (bottom first).

    A whiteout or opaque directory ends a chain: a file re-created above it starts a new one.
    """
    chains: dict[str, list[int]] = {}
    for i, layer in enumerate(layers):
        for gone in layer.whiteouts:
            for p in [p for p in chains if _under(p, gone)]:
                del chains[p]
        for d in layer.opaque_dirs:
            for p in [p for p in chains if p != d and _under(p, d)]:
                del chains[p]
        for p in layer.replaced:
            chains.pop(p, None)
        for p in layer.files:
            chains.setdefault(p, []).append(i)
    return chains


def _pkg_key(p: Package) -> tuple[object, str, str]:
    return (p.type, p.name, p.version)


def _introduced_by(
    pkg: Package,
    path: str,
    chain: list[int],
    layers: list[LayerResult],
    keys: dict[tuple[int, str], frozenset[tuple[object, str, str]]],
) -> str:
    """diff_id of the lowest layer of the unbroken run (from the top) whose version of ``path`` already
    declared this package: a package upgraded in between counts as re-introduced by the upgrade.

    ``keys`` memoizes each (layer, path) version's package keys: a dpkg status file declares hundreds.
    """
    key = _pkg_key(pkg)
    found = chain[-1]
    for idx in reversed(chain):
        have = keys.get((idx, path))
        if have is None:
            have = keys[(idx, path)] = frozenset(_pkg_key(p) for p in layers[idx].files[path].packages)
        if key in have:
            found = idx
        else:
            break
    return layers[found].diff_id


def _merge_duplicates(pkgs: list[Package]) -> list[Package]:
    """OS packages are one per key (locations merged); language packages one per key and location."""
    out: dict[tuple[object, ...], Package] = {}
    for p in pkgs:
        k: tuple[object, ...] = p.key if p.type.is_os else (*p.key, p.locations)
        prev = out.get(k)
        if prev is None:
            out[k] = p
        elif p.type.is_os:
            locs = tuple(sorted(set(prev.locations) | set(p.locations)))
            out[k] = replace(prev, locations=locs)
    return list(out.values())


def _pick_os(results: list[tuple[str, AnalysisResult]]) -> OSInfo | None:
    """One OS from every release file still visible (os-release first; the others fill gaps)."""
    return merge_release({path: r.os for path, r in results if r.os is not None})


def _layer_secrets(layers: list[LayerResult], chains: dict[str, list[int]]) -> tuple[Secret, ...]:
    """The secrets of every layer's files, each with the layer that holds it: a file that an upper layer
    deleted or replaced still has its secret in the image's bytes (``deleted=True``). Secrets in files
    the OS package manager installed (any layer's dpkg file lists) are dropped, except under ``etc/``:
    there the listed files are conffiles, where administrators put credentials of their own."""
    system = {
        p
        for lr in layers
        for r in lr.files.values()
        for s in r.system_files
        if not (p := s.lstrip("/")).startswith("etc/")
    }
    out: set[Secret] = set()
    for i, lr in enumerate(layers):
        for path, r in lr.files.items():
            if not r.secrets or path in system:
                continue
            chain = chains.get(path)
            deleted = not chain or chain[-1] != i
            out.update(replace(s, layer=lr.diff_id, deleted=deleted) for s in r.secrets)
    return tuple(sorted(out, key=lambda s: (s.path, s.line, s.rule_id, s.layer, s.masked)))


def apply_layers(artifact: Artifact, layers: list[LayerResult], extra_warnings: tuple[str, ...] = ()) -> Inventory:
    """The final inventory of an image whose layers (bottom first) were analysed into ``layers``."""
    chains = _stack(layers)
    keys: dict[tuple[int, str], frozenset[tuple[object, str, str]]] = {}
    final: list[tuple[str, AnalysisResult]] = []
    packages: list[Package] = []
    for path in sorted(chains):
        chain = chains[path]
        result = layers[chain[-1]].files[path]
        final.append((path, result))
        for pkg in result.packages:
            layer = _introduced_by(pkg, path, chain, layers, keys) if pkg.layer == "" else pkg.layer
            locs = pkg.locations or (path,)
            packages.append(replace(pkg, layer=layer, locations=locs))
    system = {s.lstrip("/") for _, r in final for s in r.system_files}
    if system:
        packages = [p for p in packages if p.type.is_os or not any(loc in system for loc in p.locations)]
    packages = _merge_duplicates(packages)
    packages.sort(key=lambda p: (p.type.value, p.name, p.version, p.locations))
    os_info = _pick_os(final)
    if os_info is not None:
        # Analyzers see one file at a time; OS purls get their distro qualifier only now.
        packages = [with_os(p, os_info) for p in packages]
    if os_info is not None and not any(p.type.is_os for p in packages) and not os_info.distroless:
        os_info = replace(os_info, distroless=True)
    warnings: list[str] = list(extra_warnings)
    for lr in layers:
        warnings.extend(lr.warnings)
    for _, r in final:
        warnings.extend(r.warnings)
    return Inventory(
        artifact=artifact,
        os=os_info,
        packages=tuple(packages),
        warnings=tuple(dict.fromkeys(warnings)),
        secrets=_layer_secrets(layers, chains),
    )
