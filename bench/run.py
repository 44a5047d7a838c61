"""Run every comparison, then write bench/results/<date>.json, .md and .png.

``python -m bench.run`` from the project root (``nox -s bench`` does that in its own
environment). Each comparison alternates its variants over several repetitions; the
in-process ones run here, the rest in child processes this one starts and always reaps.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report

ROOT = Path(__file__).resolve().parent.parent
COMPARISONS = (
    *("collectives", "real_test", "harness", "setup", "scale", "suite", "fidelity", "ranks"),
)


def machine() -> dict[str, Any]:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        cpuinfo = ""
    model = report.parse_cpu_model(cpuinfo)
    return {
        "cpus": os.cpu_count() or 0,
        "cpu_model": model if model != "unknown CPU" else platform.processor() or model,
        "platform": f"{platform.system()} {platform.machine()}",
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(COMPARISONS), help="comma-separated comparisons")
    p.add_argument("--reps", type=int, default=5, help="repetitions: collectives")
    p.add_argument("--scale-reps", type=int, default=7, help="repetitions: scale curve")
    p.add_argument("--test-reps", type=int, default=3, help="repetitions: real test")
    p.add_argument("--fidelity-reps", type=int, default=5, help="repetitions: fidelities")
    p.add_argument("--fidelity-sizes", default="2,4", help="world sizes (fidelities)")
    p.add_argument("--ranks-reps", type=int, default=3, help="repetitions: rank checks")
    p.add_argument("--harness-reps", type=int, default=3, help="repetitions: nox vs pytest")
    p.add_argument("--uv-reps", type=int, default=3)
    p.add_argument("--pip-reps", type=int, default=1, help="a pip setup takes about a minute")
    p.add_argument("--calls", default="1000,100", help="calls per repetition: 16 B,1 MiB")
    p.add_argument("--sizes", default="8,64,1024,8192,65536", help="world sizes (scale)")
    p.add_argument("--cell", default=None, help="tests-cpu cell for the harness comparison")
    p.add_argument("--tests", default="-q tests/unit/test_world.py", help="harness pytest args")
    p.add_argument("--nox-python", default=sys.executable, help="an interpreter with nox")
    p.add_argument("--suite-run", action="store_true", help="run the suite, ignore reports/")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--label", default="python -m bench.run", help="the command, as recorded")
    return p.parse_args(argv)


def _runners(args: argparse.Namespace) -> dict[str, Callable[[], dict[str, Any]]]:
    import torch

    from bench import collectives, fidelity, harness, ranks, realtest, scale, suite
    from fakedist.tooling import matrix

    env = {k: v for k, v in os.environ.items() if k != matrix.ENV_TORCH}
    found = matrix.find_matrix_file(env, ROOT)
    ci_cells = [c.id for c in matrix.select_cells(matrix.load_matrix(found), env, kind="cpu").cells]
    cell = args.cell or ci_cells[0]
    small, large = (int(x) for x in args.calls.split(","))
    return {
        "collectives": lambda: collectives.measure(args.reps, small, large),
        "real_test": lambda: realtest.measure(args.test_reps),
        "harness": lambda: harness.harness_overhead(
            ROOT, args.nox_python, cell, args.tests.split(), args.harness_reps
        ),
        "setup": lambda: harness.setup_cost(
            f"torch=={torch.__version__}", args.uv_reps, args.pip_reps
        ),
        "scale": lambda: scale.measure(
            args.scale_reps, tuple(int(s) for s in args.sizes.split(","))
        ),
        "suite": lambda: suite.measure(ROOT, ci_cells, run=args.suite_run),
        "fidelity": lambda: fidelity.measure(
            args.fidelity_reps, tuple(int(s) for s in args.fidelity_sizes.split(","))
        ),
        "ranks": lambda: ranks.measure(args.ranks_reps),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    os.chdir(ROOT)
    # Imports are timed as a CI runner has them: with .pyc files (some machines turn them off;
    # a fresh uv environment has none until the first import writes them).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    import torch

    import fakedist

    started = time.time()
    today = dt.date.today().isoformat()
    doc: dict[str, Any] = {
        "schema": report.SCHEMA,
        "date": today,
        "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": report.recorded_command(args.label, sys.argv[1:] if argv is None else argv),
        "torch": torch.__version__,
        "fakedist": fakedist.__version__,
        "python": platform.python_version(),
        "machine": machine(),
        "comparisons": [],
        "goals": [],
    }
    failed = []
    runners = _runners(args)
    for name in args.only.split(","):
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            doc["comparisons"].append(report.finish(runners[name]()))
        except Exception:
            failed.append(name)
            traceback.print_exc()
        print(f"bench: {name} took {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    doc["goals"] = report.evaluate_goals(doc["comparisons"], report.load_goals())
    doc["wall_s"] = round(time.time() - started, 1)
    report.check_schema(doc)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / today
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    markdown = report.render_markdown(doc)
    stem.with_suffix(".md").write_text(markdown, encoding="utf-8")
    try:
        from bench.plot import plot

        plot(doc, stem.with_suffix(".png"))
    except ImportError:
        print("bench: matplotlib is not installed; no plot", file=sys.stderr)
    print(markdown)
    print(f"bench: wrote {stem}.json/.md/.png in {doc['wall_s']:.0f} s", file=sys.stderr)
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
