"""Matching: installed packages against advisories, then ignore rules, VEX and severity filters."""

from garrison.matching.filters import (
    FilterOptions,
    FilterResult,
    IgnoreRule,
    Suppressed,
    VexStatement,
    apply_filters,
    build_options,
    load_ignore_file,
    load_openvex,
    parse_severities,
    should_fail,
)
from garrison.matching.matcher import MatchResult, match_inventory

__all__ = [
    "FilterOptions",
    "FilterResult",
    "IgnoreRule",
    "MatchResult",
    "Suppressed",
    "VexStatement",
    "apply_filters",
    "build_options",
    "load_ignore_file",
    "load_openvex",
    "match_inventory",
    "parse_severities",
    "should_fail",
]
