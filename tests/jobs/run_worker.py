"""``garrison server worker`` in its own process with the test tasks registered: ``python -m
tests.jobs.run_worker --database URL [flags]`` (the worker command's real code path; only the task table
has the test entries added, as data)."""

from __future__ import annotations

import sys

from tests.jobs.handlers import TEST_TASKS

from garrison.cli.main import main
from garrison.jobs.tasks import TASKS

if __name__ == "__main__":
    TASKS.update(TEST_TASKS)
    sys.exit(main(["server", "worker", *sys.argv[1:]]))
