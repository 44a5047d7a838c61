"""Comparison 5: the conformance suite's wall time per torch version in CI's matrix.

Read from the junit XML that ``nox -s tests-cpu`` leaves in reports/ (``junit-<cell>.xml``);
with ``run=True``, or where a cell has no report but has its .nox environment, pytest runs the
conformance suite in that environment instead.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from bench.harness import session_envdir

CONFORMANCE, WHOLE = "conformance tests", "whole pytest run"
PREFIX = "tests.conformance"


def junit_times(xml_text: str, prefix: str = PREFIX) -> dict[str, float]:
    """From junit XML: the summed time of tests under ``prefix``, the run's time and counts."""
    root = ET.fromstring(xml_text)
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    out = {"selected": 0.0, "total": 0.0, "tests": 0.0, "failures": 0.0, "errors": 0.0}
    for suite in suites:
        out["total"] += float(suite.get("time", 0))
        for key in ("tests", "failures", "errors"):
            out[key] += float(suite.get(key, 0))
        for case in suite.iter("testcase"):
            if case.get("classname", "").startswith(prefix):
                out["selected"] += float(case.get("time", 0))
    return out


def _torch_version(env: Path) -> str | None:
    """The torch version installed in a venv, from its dist-info folder name."""
    for found in sorted(env.glob("lib/python*/site-packages/torch-*.dist-info")):
        return found.name[len("torch-") : -len(".dist-info")]
    return None


def _run_suite(env_python: Path, root: Path) -> tuple[str, float]:
    with tempfile.TemporaryDirectory(prefix="fakedist-bench-") as tmp:
        junit = Path(tmp) / "junit.xml"
        start = time.perf_counter()
        argv = [str(env_python), "-m", "pytest", "-q", "-p", "no:randomly", "tests/conformance"]
        subprocess.run(
            [*argv, f"--junitxml={junit}"],
            cwd=root,
            capture_output=True,
            timeout=1200,
            check=False,
        )
        return junit.read_text(encoding="utf-8"), time.perf_counter() - start


def measure(root: Path, cells: list[str], run: bool = False) -> dict[str, Any]:
    """One case per cell; a single sample each (one CI run)."""
    cases, notes = [], []
    for cell in cells:
        env = root / ".nox" / session_envdir(f"tests-cpu({cell})")
        report = root / "reports" / f"junit-{cell}.xml"
        version = _torch_version(env) or cell
        if report.exists() and not run:
            times = junit_times(report.read_text(encoding="utf-8"))
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(report)))
            source = f"reports/junit-{cell}.xml ({stamp}, under coverage)"
        elif (env / "bin" / "python").exists():
            xml_text, _ = _run_suite(env / "bin" / "python", root)
            times = junit_times(xml_text)
            source = f"pytest tests/conformance in .nox/{env.name}"
        else:
            notes.append(f"torch {cell}: no reports/junit-{cell}.xml and no environment; skipped")
            continue
        samples = {CONFORMANCE: [times["selected"]], WHOLE: [times["total"]]}
        cases.append({"case": f"torch {version}", "samples": samples})
        notes.append(
            f"torch {version}: {source}; {times['tests']:.0f} tests, "
            f"{times['failures'] + times['errors']:.0f} failed"
        )
    return {
        "id": "suite",
        "title": "5. Test suite wall time per torch version (CI's cells)",
        "unit": "s",
        "baseline": None,
        "variants": [CONFORMANCE, WHOLE],
        "cases": cases,
        "notes": notes,
    }
