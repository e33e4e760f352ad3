"""``-o PATH`` never replaces what stands there (cli/output.py), through the real command where an image
is needed. Character devices are tested with a FIFO and with devices created by ``os.mknod`` in a
temporary folder (twins of /dev/zero and /dev/null) and with a pty of the test's own: never with the
machine's /dev/null."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from tests.support.images import BuiltImages

from garrison.cli.main import run
from garrison.cli.output import open_output, output_target
from garrison.errors import UsageError


def _write(path: Path | str, text: str = "report\n") -> None:
    with open_output(output_target(path)) as out:
        out.write(text)


def test_new_file_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        _write(tmp_path / "new" / "r.json")
    finally:
        os.umask(old)
    st = (tmp_path / "new" / "r.json").stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert (tmp_path / "new" / "r.json").read_text() == "report\n"
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["r.json"]  # no temporary file left


def test_existing_file_keeps_its_mode_and_is_replaced_atomically(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("old\n")
    out.chmod(0o604)
    inode = out.stat().st_ino
    _write(out)
    assert out.read_text() == "report\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o604
    assert out.stat().st_ino != inode  # a new file renamed over the old one


def test_failed_run_leaves_the_old_file(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("old\n")
    with pytest.raises(RuntimeError), open_output(output_target(out)) as f:
        f.write("half a rep")
        raise RuntimeError("render failed")
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_symlink_is_written_through_to_its_target(tmp_path: Path) -> None:
    target = tmp_path / "real" / "r.json"
    target.parent.mkdir()
    target.write_text("old\n")
    target.chmod(0o600)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    _write(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "report\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    # A dangling link names the file to create.
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "real" / "later.json")
    _write(dangling)
    assert dangling.is_symlink() and (tmp_path / "real" / "later.json").read_text() == "report\n"


def test_hard_linked_file_stays_one_file(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    out.write_text("old\n")
    other = tmp_path / "other.json"
    os.link(out, other)
    _write(out)
    assert other.read_text() == "report\n" and out.stat().st_ino == other.stat().st_ino


def test_fifo_is_written_into(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    _write(fifo)
    reader.join(10)
    assert got == [b"report\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating device nodes needs root")
def test_character_devices_are_written_into_not_replaced(tmp_path: Path) -> None:
    zero = tmp_path / "zero"  # a twin of /dev/zero (1, 5): writes are accepted and discarded
    os.mknod(zero, 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    _write(zero)
    assert stat.S_ISCHR(os.lstat(zero).st_mode) and os.lstat(zero).st_rdev == os.makedev(1, 5)
    assert [p.name for p in tmp_path.iterdir()] == ["zero"]
    # A twin of /dev/null (1, 3) in the temporary folder: the node survives, nothing appears beside it.
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    _write(null)
    assert stat.S_ISCHR(os.lstat(null).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["null", "zero"]


def test_terminal_is_written_into() -> None:
    """A pseudo-terminal of our own (its /dev/pts node: devpts refuses a node made elsewhere, and refuses
    temporary files, so a rename could not happen there either): the report arrives on the other side."""
    leader, follower = os.openpty()
    try:
        tty = os.ttyname(follower)
        _write(tty, "to the terminal\n")
        assert stat.S_ISCHR(os.lstat(tty).st_mode)
        assert b"to the terminal" in os.read(leader, 1000)
    finally:
        os.close(leader)
        os.close(follower)


def test_directory_is_a_clear_error_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="it is a directory"):
        output_target(tmp_path)
    # Through the command: refused at once (the source does not even exist), exit 2.
    proc = subprocess.run(
        [sys.executable, "-m", "garrison.cli.main", "sbom", f"oci:{tmp_path}/none", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "GARRISON_CONFIG": os.devnull},
        timeout=120,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip() == f"garrison: error: cannot write {tmp_path}: it is a directory "
        f"(give a file name, e.g. {tmp_path}/report.json)"
    )


def test_dash_is_standard_output(test_images: BuiltImages, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert output_target("-").mode == "stdout"
    code = run(["-q", "sbom", test_images.debian_oci_ref, "-f", "json", "-o", "-", "--cache-dir", str(tmp_path)])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["schema"] == "garrison.inventory/v1"
    assert not (Path.cwd() / "-").exists()


def test_sbom_through_a_symlink_and_a_fifo(test_images: BuiltImages, tmp_path: Path) -> None:
    target = tmp_path / "reports" / "debian.json"
    target.parent.mkdir()
    target.write_text("{}")
    target.chmod(0o640)
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    assert (
        run(
            [
                "-q",
                "sbom",
                test_images.debian_oci_ref,
                "-f",
                "json",
                "-o",
                str(link),
                "--cache-dir",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    assert link.is_symlink() and json.loads(target.read_text())["schema"] == "garrison.inventory/v1"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
