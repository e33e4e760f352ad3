"""``garrison posture -f json`` writes misconfiguration findings through a fast line writer: its bytes
must be exactly what the dict path (``finding_document`` then ``json.dumps``) writes, on real reports:
every test manifest, the Pod Security fixtures, exempted findings, and names with quotes, backslashes,
control characters and non-ASCII text."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from pathlib import Path

from garrison.posture.report import PostureReport
from garrison.report import json_report
from garrison.services.posture import PostureOptions, assess

ROOT = Path(__file__).resolve().parents[2]
PSS = ROOT.parent / "shared" / "reference" / "pss"

ODD = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: "we\\"ird\\\\name-\\u00e9\\u2028"
  namespace: "ns-\\t\\u0001-日本"
  annotations:
    garrison.dev/exempt: GAR-PSS-002
    garrison.dev/exempt-reason: "host \\"metrics\\" \\u00fc"
spec:
  template:
    spec:
      hostNetwork: true
      containers:
        - name: "c\\u00e9\\n"
          image: "nginx:latest"
          securityContext: {privileged: true, capabilities: {add: ["SYS_ADMIN", "NET_RAW"]}}
          env: [{name: DB_PASSWORD, value: "s\\u00e9cret"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "anon-\\u00e9"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: Group, name: "system:anonymous"}]
"""


def _both(report: PostureReport) -> tuple[str, str]:
    report = dataclasses.replace(report, generated_at="2026-12-02T00:00:00Z")  # one time for both
    lines = json_report._findings_document(report, encoded=True)["findings"]
    assert all(isinstance(x, json_report._Encoded) for x in lines)  # the fast path did write them
    fast = io.StringIO()
    json_report.render(report, fast)
    slow = io.StringIO()
    json_report._dump_findings(json_report.findings_document(report), slow)
    return fast.getvalue(), slow.getvalue()


def test_fast_lines_equal_the_dict_path_on_odd_text(tmp_path: Path) -> None:
    m = tmp_path / "odd.yaml"
    m.write_text(ODD, encoding="utf-8")
    report = assess([str(m)], PostureOptions(today=dt.date(2026, 12, 2)))
    assert report.findings and report.suppressed  # open and exempted findings both go through it
    assert any("\\u0001" in f.subject.namespace or "\u0001" in f.subject.namespace for f in report.findings)
    fast, slow = _both(report)
    assert fast == slow
    json.loads(fast)


def test_fast_lines_equal_the_dict_path_on_every_test_manifest() -> None:
    sources = [str(ROOT / "tests" / "posture" / "controls")]
    if PSS.is_dir():
        sources.append(str(PSS))
    report = assess(sources, PostureOptions())
    assert len(report.findings) > 500
    fast, slow = _both(report)
    assert fast == slow
