"""Secret scanning: versioned rules (``garrison/rules/secrets/``), a pure engine and the layer analyzer.

The scan service builds one analyzer per scan and hands it to the layer walk::

    from garrison.secrets import secret_analyzer

    analyzer = secret_analyzer(user_file)  # user_file: Path | None (--secret-config)
    inventory = scan_reference(ref, settings, progress, packages=False, extra=(analyzer,))
    inventory.secrets  # every layer's secrets, deleted ones included, masked
"""

from __future__ import annotations

from garrison.secrets.analyzer import SecretAnalyzer, scan_bytes, secret_analyzer
from garrison.secrets.engine import SecretScanner, mask, shannon_entropy
from garrison.secrets.rules import AllowRule, Rule, SecretRules, load_rules

__all__ = [
    "AllowRule",
    "Rule",
    "SecretAnalyzer",
    "SecretRules",
    "SecretScanner",
    "load_rules",
    "mask",
    "scan_bytes",
    "secret_analyzer",
    "shannon_entropy",
]
