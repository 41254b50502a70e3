"""The API documents through the tools their users run: the AsyncAPI document through the
official parser (`@asyncapi/parser`), every document through Redocly's recommended ruleset
(`@redocly/cli lint`), with zero errors. Both are pinned in tools/package-lock.json and
installed by `make test` (`npm ci`). The warnings Redocly still gives are exactly the ones
docs/api-conformance.md lists and justifies."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conformance.conftest import ROOT, SERVICES, document

TOOLS = ROOT / "tools"
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"
REDOCLY = TOOLS / "node_modules" / ".bin" / "redocly"
ENV = os.environ | {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}

# (document, Redocly rule) -> how many warnings; each is justified in docs/api-conformance.md.
ACCEPTED_WARNINGS = {
    # /r/{link_code}, /connect/linkedin/{token}: 302; the employee page's four forms: 303
    # (post/redirect/get)
    ("ingest", "operation-2xx-response"): 6,
    ("attribution", "operation-4xx-response"): 4,  # the probes, /metrics, /openapi.json
    ("notifier", "operation-4xx-response"): 4,
    ("asyncapi", "security-defined"): 13,  # Kafka security is per server
    ("asyncapi", "spec-ref-siblings"): 1,  # RecognitionDue.facts default: {} beside $ref
}


def _node(*args: str | Path) -> subprocess.CompletedProcess[str]:
    if not (TOOLS / "node_modules").is_dir():
        pytest.fail("tools/node_modules is missing: run `make api-tools` (npm ci)")
    return subprocess.run(
        [str(a) for a in args], cwd=TOOLS, env=ENV, capture_output=True, text=True, timeout=120
    )


def test_asyncapi_parses_without_diagnostics() -> None:
    result = _node("node", "asyncapi-parse.mjs", ASYNCAPI)
    assert result.returncode == 0, result.stdout + result.stderr
    diagnostics = [orjson.loads(line) for line in result.stdout.splitlines() if line]
    assert diagnostics == [], diagnostics


def test_asyncapi_is_the_latest_version_the_parser_knows() -> None:
    assert ASYNCAPI.read_text().startswith("asyncapi: 3.1.0\n")


def _lint(path: Path) -> dict[str, Any]:
    result = _node(REDOCLY, "lint", "--config", "redocly.yaml", "--format=json", path)
    report: dict[str, Any] = orjson.loads(result.stdout)
    return report


@pytest.mark.parametrize("name", [*SERVICES, "asyncapi"])
def test_redocly_recommended_ruleset_finds_no_error(name: str) -> None:
    report = _lint(ASYNCAPI if name == "asyncapi" else document(name))
    problems = report["problems"]
    errors = [p for p in problems if p["severity"] == "error"]
    assert report["totals"]["errors"] == 0, errors
    warnings = Counter(p["ruleId"] for p in problems if p["severity"] == "warn")
    expected = {rule: n for (doc, rule), n in ACCEPTED_WARNINGS.items() if doc == name}
    assert dict(warnings) == expected, [p["message"] for p in problems]
