"""Assertions the self-test workflow makes on the Action's outputs, one mode per job.

Reads the outputs from environment variables (set with ``env:`` in the workflow) and the
``report`` JSON file. With ``FAKEDIST_SELFTEST_OUT`` set (act_selftest.py does), also copies
the report directory and the outputs there so the local run can assert on them too.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path


def _fail(message: str) -> None:
    print(f"::error::selftest: {message}")
    sys.exit(1)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        _fail(message)


def _report() -> dict:
    path = Path(os.environ.get("REPORT", ""))
    _expect(path.is_file(), f"report output {str(path)!r} is not a file")
    return json.loads(path.read_text(encoding="utf-8"))


def _record(mode: str) -> None:
    out = os.environ.get("FAKEDIST_SELFTEST_OUT")
    if not out:
        return
    target = Path(out) / mode / os.environ.get("TORCH", "")
    target.mkdir(parents=True, exist_ok=True)
    names = ("OUTCOME", "PASSED", "FAILED", "COVERAGE", "MATRIX", "REPORT")
    outputs = {n.lower(): os.environ[n] for n in names if n in os.environ}
    (target / "outputs.json").write_text(json.dumps(outputs, indent=2), encoding="utf-8")
    if Path("fakedist-report").is_dir():
        shutil.copytree("fakedist-report", target / "fakedist-report", dirs_exist_ok=True)


def main(mode: str) -> None:
    env = os.environ
    _record(mode)
    if mode == "bad-input":
        _expect(env.get("OUTCOME") == "failure", f"outcome {env.get('OUTCOME')!r}, not failure")
        _expect(not env.get("REPORT"), "a report was written: something ran")
        _expect(not Path("injected").exists(), "the injected command ran")
        return
    if mode == "combine":
        _expect(float(env.get("COVERAGE") or -1) >= 0, f"coverage {env.get('COVERAGE')!r}")
        _expect(_report()["coverage"] is not None, "no coverage in the report")
        return
    passed, failed = int(env.get("PASSED") or -1), int(env.get("FAILED") or -1)
    report = _report()
    if mode == "failing":
        _expect(env.get("OUTCOME") == "failure", f"outcome {env.get('OUTCOME')!r}, not failure")
        _expect((passed, failed) == (1, 1), f"passed/failed {passed}/{failed}, expected 1/1")
        (failure,) = report["cells"][0]["failures"]
        where = (failure["file"], failure["line"])
        expected = ("examples/failing-project/tests/test_fails.py", 16)
        _expect(where == expected, f"failure located at {where}, expected {expected}")
        return
    _expect(failed == 0 and passed > 0, f"passed/failed {passed}/{failed}")
    cells = json.loads(env.get("MATRIX") or "{}").get("include", [])
    _expect(len(cells) == 1, f"matrix output {env.get('MATRIX')!r} is not one cell")
    if mode == "long-path":  # only the gloo fidelity tests ran, none failed
        tests = [case for cell in report["cells"] for case in cell.get("failures", [])]
        _expect(not tests, f"failures under the long path: {tests}")
        return
    _expect(float(env.get("COVERAGE") or -1) > 0, f"coverage output {env.get('COVERAGE')!r}")
    if mode == "suite":
        _expect(cells[0]["torch"] == env.get("TORCH"), f"cell {cells[0]} is not {env.get('TORCH')}")


if __name__ == "__main__":
    main(sys.argv[1])
