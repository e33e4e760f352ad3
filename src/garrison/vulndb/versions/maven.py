"""Maven versions, ordered like Maven's ``ComparableVersion``.

The version is lower-cased and split on ``.``, ``-`` and digit/letter transitions; ``-``, a
``.`` followed by a letter (Maven 3.9 semantics) and a letter/digit transition open a nested list. Trailing "null" items
(``0``, the empty qualifier, ``ga``/``final``/``release``) are trimmed from each list. Qualifiers
rank alpha < beta < milestone < rc (= cr) < snapshot < "" (= ga = final = release) < sp, then
unknown qualifiers alphabetically; numbers beat lists, which beat qualifiers. Comparing against a
missing item uses the "null" rules, which is why this scheme compares pairwise.
"""

from __future__ import annotations

from garrison.vulndb.versions.base import CmpScheme, InvalidVersion, clean

Item = int | str | list["Item"]

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}
_RELEASE_RANK = str(_QUALIFIERS.index(""))


def _qualifier(text: str, followed_by_digit: bool) -> str:
    if followed_by_digit and text in _SHORT:
        return _SHORT[text]
    return _ALIASES.get(text, text)


def _rank(q: str) -> str:
    """Maven compares these rank strings lexically: "0".."6" for known ones, "7-name" for others."""
    return str(_QUALIFIERS.index(q)) if q in _QUALIFIERS else f"{len(_QUALIFIERS)}-{q}"


def _item(text: str, followed_by_digit: bool = False) -> Item:
    return int(text) if text.isdigit() else _qualifier(text, followed_by_digit)


def _is_null(item: Item) -> bool:
    return item == 0 or item == "" or item == []


def _normalize(items: list[Item]) -> None:
    i = len(items) - 1
    while i >= 0:
        last = items[i]
        if _is_null(last):
            del items[i]
        elif not isinstance(last, list):
            break
        i -= 1


def parse(version: str) -> list[Item]:
    v = clean(version).lower()
    root: list[Item] = []
    lst = root
    stack = [root]
    start = 0
    is_digit = False
    for i, c in enumerate(v):
        if c in ".-":
            lst.append(0 if i == start else _item(v[start:i]))
            start = i + 1
            # Maven 3.9 (MNG-7644): a qualifier after "." reads as one after "-" (1.0.RC1 = 1.0-RC1).
            if c == "-" or (i + 1 < len(v) and v[i + 1].isalpha()):
                new: list[Item] = []
                lst.append(new)
                lst = new
                stack.append(lst)
        elif c.isdigit():
            if not is_digit and i > start:
                lst.append(_item(v[start:i], followed_by_digit=True))
                start = i
                new = []
                lst.append(new)
                lst = new
                stack.append(lst)
            is_digit = True
        else:
            if is_digit and i > start:
                lst.append(_item(v[start:i]))
                start = i
                new = []
                lst.append(new)
                lst = new
                stack.append(lst)
            is_digit = False
    if len(v) > start:
        lst.append(_item(v[start:]))
    for items in reversed(stack):
        _normalize(items)
    return root


def _cmp_to_null(a: Item) -> int:
    if isinstance(a, int):
        return 0 if a == 0 else 1
    if isinstance(a, str):
        r = _rank(a)
        return (r > _RELEASE_RANK) - (r < _RELEASE_RANK)
    return _cmp_to_null(a[0]) if a else 0


def _cmp_item(a: Item, b: Item | None) -> int:
    if b is None:
        return _cmp_to_null(a)
    if isinstance(a, int):
        if isinstance(b, int):
            return (a > b) - (a < b)
        return 1
    if isinstance(a, str):
        if isinstance(b, (int, list)):
            return -1
        ra, rb = _rank(a), _rank(b)
        return (ra > rb) - (ra < rb)
    if isinstance(b, int):
        return -1
    if isinstance(b, str):
        return 1
    return _cmp_list(a, b)


def _cmp_list(a: list[Item], b: list[Item]) -> int:
    for i in range(max(len(a), len(b))):
        left = a[i] if i < len(a) else None
        right = b[i] if i < len(b) else None
        result = _cmp_item(left, right) if left is not None else -_cmp_item(right, None) if right is not None else 0
        if result:
            return result
    return 0


def _parse_checked(version: str) -> list[Item]:
    if any(c.isspace() for c in version.strip()):
        raise InvalidVersion(f"invalid Maven version {version!r}")
    return parse(version)


SCHEME = CmpScheme("maven", _parse_checked, _cmp_list)
