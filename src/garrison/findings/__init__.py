"""What is done to findings of every kind: suppression (ignore files, VEX, exemptions), de-duplication
and the CI gate. Engines produce :class:`~garrison.model.Finding` envelopes; services pass them through
here; renderers and the store take the result.

Re-exports are lazy (PEP 562) so that importing one submodule does not import the others.
"""

from __future__ import annotations

from garrison._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(
        (
            "IgnoreRule",
            "SuppressOptions",
            "SuppressResult",
            "VexStatement",
            "build_options",
            "load_ignore_file",
            "load_openvex",
            "parse_severities",
            "purl_matches",
            "suppress",
        ),
        "garrison.findings.suppress",
    ),
    "dedupe": "garrison.findings.dedupe",
    "should_fail": "garrison.findings.gate",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
