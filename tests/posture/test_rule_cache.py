"""The built-in rule files' parse cache (``posture/controls.py``): a hit gives what parsing gives, and a
missing, stale, corrupt or unwritable cache is parsed again, never an error."""

from __future__ import annotations

import marshal
from pathlib import Path

import pytest

from garrison.posture import controls
from garrison.posture.controls import _builtin_rule_data, _load_builtin_yaml, _rule_cache_path, builtin_files


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GARRISON_CACHE_DIR", str(tmp_path))
    return tmp_path


def _parsed() -> list[object]:
    return [_load_builtin_yaml(text, name) for name, text in builtin_files()]


def test_a_hit_gives_what_parsing_gives(cache_dir: Path) -> None:
    files = builtin_files()
    first = _builtin_rule_data(files)  # parses and writes
    path = _rule_cache_path()
    assert path.parent.parent == cache_dir and path.is_file()
    assert first == _parsed()
    again = _builtin_rule_data(files)  # reads
    assert again == first
    assert [type(x) for x in again] == [type(x) for x in first]


@pytest.mark.parametrize(
    "blob",
    [b"", b"not marshal at all", marshal.dumps(("wrong key", [])), marshal.dumps(["a", "list"]), b"\xe3" * 40],
)
def test_a_bad_cache_file_is_parsed_again_and_replaced(cache_dir: Path, blob: bytes) -> None:
    path = _rule_cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(blob)
    files = builtin_files()
    assert _builtin_rule_data(files) == _parsed()
    key, data = marshal.loads(path.read_bytes())
    assert key == controls._rule_cache_key(files) and data == _parsed()


def test_changed_rule_text_is_not_served_from_the_cache(cache_dir: Path) -> None:
    files = builtin_files()
    _builtin_rule_data(files)
    name, text = files[0]
    changed = [(name, text.replace("title:", "title:  ", 1)), *files[1:]]
    assert controls._rule_cache_key(changed) != controls._rule_cache_key(files)
    got = _builtin_rule_data(changed)
    assert got[0] == _load_builtin_yaml(changed[0][1], name)


def test_an_unwritable_cache_folder_only_costs_the_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("GARRISON_CACHE_DIR", str(blocker))
    assert _builtin_rule_data(builtin_files()) == _parsed()
    assert not list(tmp_path.glob("**/*.tmp"))
