"""Helpers shared by the analyzer tests: run one analyzer the way the layer walker does."""

from __future__ import annotations

from garrison.inventory.base import AnalysisResult, Analyzer, FileInput


def run(analyzer: Analyzer, path: str, content: bytes, mode: int = 0o644) -> AnalysisResult:
    """Ask ``wants`` first (a test of a file the analyzer would never see is no test), then analyze."""
    assert analyzer.wants(path, len(content), mode), f"{analyzer.name} does not want {path}"
    assert len(content) <= analyzer.max_bytes
    return analyzer.analyze(FileInput(path=path, content=content, mode=mode, size=len(content)))


def names_versions(result: AnalysisResult) -> set[tuple[str, str]]:
    return {(p.name, p.version) for p in result.packages}
