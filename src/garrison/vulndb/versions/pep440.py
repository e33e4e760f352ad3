"""Python package versions: PEP 440 (https://peps.python.org/pep-0440/), parsed and ordered here.

Spellings normalize as the PEP says (``1.0-RC-1`` is ``1.0rc1``, ``v1.0`` is ``1.0``, ``1.0-1`` is
``1.0.post1``); the order is epoch, release (trailing zeros do not count), pre-release (a dev release of a
final version sorts before its pre-releases), post-release, dev-release, local label. Legacy (non-PEP 440)
versions raise :class:`InvalidVersion`: pip itself no longer orders them. ``tests/vulndb/test_versions.py``
checks the order against ``packaging.version``, the implementation pip uses.
"""

from __future__ import annotations

import re

from garrison.vulndb.versions.base import InvalidVersion, KeyScheme, clean

_VERSION = re.compile(
    r"""
    ^v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?P<pre>[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?))?
    (?P<dev>[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    $
    """,
    re.VERBOSE | re.IGNORECASE,
)
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "pre": 2, "preview": 2, "rc": 2}
_LOCAL_SEP = re.compile(r"[-_.]")
_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)*\Z")

#: Pre-release part of the key: a final release's dev versions first, then a < b < rc, then no pre-release.
_DEV_ONLY = (-1, 0)
_FINAL = (3, 0)
#: Post part: none sorts below ``.post0``.
_NO_POST = -1
#: Dev part: none sorts above every ``.devN``.
_NO_DEV = (1, 0)

Key = tuple[int, tuple[int, ...], tuple[int, int], int, tuple[int, int], tuple[tuple[int, int, str], ...]]


def _release(text: str) -> tuple[int, ...]:
    release = [int(p) for p in text.split(".")]
    while release and release[-1] == 0:
        release.pop()
    return tuple(release)


def key(version: str) -> Key:
    v = clean(version)
    if _PLAIN.match(v):  # most versions are a bare release: no regex groups to read
        return (0, _release(v), _FINAL, _NO_POST, _NO_DEV, ())
    m = _VERSION.match(v)
    if m is None:
        raise InvalidVersion(f"invalid PEP 440 version {version!r}")
    epoch, release, pre, pre_l, pre_n, post, post_n1, _post_l, post_n2, dev, _dev_l, dev_n, local_text = m.groups()
    post_k = int(post_n1 or post_n2 or 0) if post else _NO_POST
    dev_k = (0, int(dev_n or 0)) if dev else _NO_DEV
    if pre:
        pre_k = (_PRE_RANK[pre_l.lower()], int(pre_n or 0))
    elif post_k == _NO_POST and dev:
        pre_k = _DEV_ONLY
    else:
        pre_k = _FINAL
    local: tuple[tuple[int, int, str], ...] = ()
    if local_text:
        # Numeric segments sort above alphanumeric ones, and by value; a longer label above its prefix.
        local = tuple(
            (1, int(seg), "") if seg.isdigit() else (0, 0, seg.lower()) for seg in _LOCAL_SEP.split(local_text)
        )
    return (int(epoch or 0), _release(release), pre_k, post_k, dev_k, local)


SCHEME = KeyScheme("pep440", key)
