"""CLI tests (a package, so that its module names cannot clash with test_cli.py elsewhere)."""
