"""``garrison server worker``'s flags, and the periodic schedules procrastinate can say."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.cli.main import main
from garrison.jobs.pg import cron_for


@pytest.mark.parametrize(
    ("seconds", "cron"),
    [
        (1, "* * * * * */1"),
        (15, "* * * * * */15"),
        (60, "*/1 * * * *"),
        (600, "*/10 * * * *"),
        (3600, "0 */1 * * *"),
        (6 * 3600, "0 */6 * * *"),
        (86400, "0 0 */1 * *"),
        (7 * 86400, "0 0 */7 * *"),
    ],
)
def test_intervals_procrastinate_can_say(seconds: float, cron: str) -> None:
    assert cron_for(seconds) == cron


@pytest.mark.parametrize("seconds", [0, -5, 1.5, 7, 90, 25 * 60, 5 * 3600, 1.5 * 86400])
def test_intervals_it_cannot_are_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="periodic interval"):
        cron_for(seconds)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--stalled-after", "1"], "--stalled-after: at least 3 s"),
        (["--concurrency", "0"], "expected a whole number from 1 to 256"),
        (["--grace", "-1"], "seconds cannot be negative"),
        (["--rescan-interval", "soon"], "is not a number of seconds"),
    ],
)
def test_bad_flags_are_usage_errors(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["server", "worker", "--database", f"sqlite:///{tmp_path / 'w.db'}", *flags])
    except SystemExit as e:  # argparse's own refusal
        code = int(e.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w.db").exists()  # refused before it touched the database
