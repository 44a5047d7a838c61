"""The Action's steps: ``validate`` (before any install) and ``run`` (nox, then the report).

``run`` builds the nox command line from validated inputs and executes it without a shell;
the user project reaches the noxfile through ``FAKEDIST_*`` variables (see project.py).
Results are read per cell from the JUnit XML the sessions write, copied with each cell's
coverage data (``reports/coverage/.coverage.<cell>``, see fakedist.tooling.results) into
``fakedist-report/`` in the workspace (upload it for a combine job), and reported.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fakedist.tooling import results
from fakedist.tooling.action import report
from fakedist.tooling.action.github import append_file, error_line, outputs_text
from fakedist.tooling.action.inputs import (
    ENV_RECORD,
    InputError,
    Inputs,
    RecordError,
    matrix_env,
    read_inputs,
    record,
    replay,
    select,
)
from fakedist.tooling.action.project import Project
from fakedist.tooling.matrix import Cell, find_matrix_file, load_matrix
from fakedist.tooling.redact import redacted_cell

__all__ = ["REPORT_DIR", "Context", "child_env", "main_run", "main_validate", "nox_argv"]

REPORT_DIR = "fakedist-report"
_JUNIT_NAME = re.compile(r"junit-(?P<id>.+?)(?:\.[0-9a-f]{8})?\.xml")
Runner = Callable[[Sequence[str], Mapping[str, str]], int]


def _subprocess_runner(argv: Sequence[str], env: Mapping[str, str]) -> int:
    sys.stdout.flush()
    return subprocess.run(list(argv), env=dict(env), check=False).returncode


@dataclass(frozen=True)
class Context:
    """Where things are: this action's checkout, the workspace, the tools' bin directory."""

    action_root: Path
    workspace: Path
    tools_bin: Path
    env: Mapping[str, str]
    tag: str = ""  # suffix that keeps report files of different jobs apart

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Context:
        return cls(
            action_root=Path(__file__).resolve().parents[4],
            workspace=Path(env.get("GITHUB_WORKSPACE") or Path.cwd()).resolve(),
            tools_bin=Path(sys.executable).parent,
            env=env,
            tag=uuid.uuid4().hex[:8],
        )

    @property
    def report_dir(self) -> Path:
        return self.workspace / REPORT_DIR


def nox_argv(ctx: Context, session: str, posargs: Sequence[str] = ()) -> list[str]:
    """``nox`` from the tools environment on this action's noxfile; posargs go to pytest."""
    argv = [str(ctx.tools_bin / "nox"), "--noxfile", str(ctx.action_root / "noxfile.py")]
    argv += ["--session", session, "--no-color"]
    return [*argv, "--", *posargs] if posargs else argv


def project_of(inputs: Inputs) -> Project:
    return Project(
        root=inputs.project,
        tests=inputs.tests,
        suite=inputs.suite,
        install=inputs.install,
        coverage=inputs.coverage,
        cov_source=inputs.coverage_source,
        shuffle=inputs.shuffle,
        workers=inputs.workers,
    )


def child_env(inputs: Inputs, ctx: Context) -> dict[str, str]:
    """The runner's environment minus our inputs and PYTHONPATH, plus FAKEDIST_* settings."""
    env = {
        k: v
        for k, v in ctx.env.items()
        if k not in ("PYTHONPATH", ENV_RECORD) and not k.startswith("FAKEDIST_INPUT_")
    }
    env.update(matrix_env(inputs))
    env.update(project_of(inputs).env())
    return env


def _python(inputs: Inputs) -> str:
    return inputs.python_version or "{}.{}".format(*sys.version_info[:2])


def _fail(exc: InputError | RecordError) -> int:
    print(error_line(f"fakedist: {exc}"))
    return 2


def main_validate(env: Mapping[str, str]) -> int:
    """Step 1: check every input; output them (``inputs``: the run step reads this record),
    the matrix and a cache key. Installs nothing."""
    ctx = Context.from_env(env)
    try:
        inputs = read_inputs(env, ctx.workspace)
        cells = select(inputs, ctx.action_root, env).cells if inputs.session != "coverage" else ()
    except InputError as exc:
        return _fail(exc)
    matrix = {"include": [redacted_cell(c) for c in cells]}
    key = "_".join(f"{c.torch}-{c.variant}" for c in cells) or "coverage"
    values = {
        "matrix": json.dumps(matrix, separators=(",", ":")),
        "cache-key": key,
        "python": _python(inputs),
        "inputs": record(env),
    }
    append_file(env.get("GITHUB_OUTPUT"), outputs_text(values))
    names = ", ".join(c.id for c in cells) or "coverage combine"
    print(f"fakedist: inputs valid; {inputs.session}: {names} (Python {values['python']})")
    return 0


def _clean(root: Path) -> None:
    coverage = results.COVERAGE_DIR.as_posix()
    for pattern in (
        f"{results.REPORTS_DIR.as_posix()}/junit-*.xml",
        f"{coverage}/.coverage",
        f"{coverage}/.coverage.*",
        results.COVERAGE_XML.as_posix(),
        results.COVERAGE_MARKDOWN.as_posix(),
    ):
        for path in root.glob(pattern):
            path.unlink()


def _cell_for(
    cell_id: str, cells: Sequence[Cell], env: Mapping[str, str], root: Path
) -> tuple[str, str]:
    """(torch, variant) of a cell id, from the selection or else from the matrix file."""
    for cell in cells:
        if cell.id == cell_id:
            return cell.torch, cell.variant
    minor, _, variant = cell_id.rpartition("-")
    try:
        release = load_matrix(find_matrix_file(env, root)).release(minor)
    except ValueError:
        release = None
    return (release.version if release else minor), variant


def _coverage(
    ctx: Context, env: Mapping[str, str], runner: Runner, problems: list[str]
) -> report.Coverage | None:
    """``nox -s coverage`` over the per-cell data in the action root; None without data.
    A coverage report that cannot be read is added to ``problems``."""
    if not list((ctx.action_root / results.COVERAGE_DIR).glob(".coverage.*")):
        return None
    rc = runner(nox_argv(ctx, "coverage"), env)
    xml = ctx.action_root / results.COVERAGE_XML
    if rc != 0 or not xml.is_file():
        print(error_line(f"fakedist: nox -s coverage failed (exit {rc}); no {xml.name}"))
        return None
    table_file = ctx.action_root / results.COVERAGE_MARKDOWN
    try:
        table = table_file.read_text(encoding="utf-8") if table_file.is_file() else ""
        return report.parse_coverage_xml(xml, table)
    except (OSError, UnicodeDecodeError) as exc:
        problem = f"{table_file.name}: cannot be read ({exc})"
    except report.ReportError as exc:
        problem = str(exc)
    print(error_line(f"fakedist: coverage: {problem}"))
    problems.append(problem)
    return None


def _read_cell(
    junit: Path, cell_id: str, torch: str, variant: str, inputs: Inputs, ctx: Context
) -> report.CellResult:
    """One cell's results; an unreadable file becomes a result with the problem named."""
    try:
        return report.parse_junit(junit, cell_id, torch, variant, inputs.project, ctx.workspace)
    except report.ReportError as exc:
        return report.CellResult(cell_id, torch, variant, junit=str(junit), problem=str(exc))


def _publish(ctx: Context, files: Sequence[Path], problems: list[str]) -> None:
    """Copy junit XML and coverage data into fakedist-report/, tagged per job; a copy that
    fails (disk full) is added to ``problems``."""
    for path in files:
        if path.name.startswith(".coverage."):
            name = f"{path.name}.{ctx.tag}"
        else:
            name = f"{path.stem}.{ctx.tag}{path.suffix}"
        try:
            ctx.report_dir.mkdir(parents=True, exist_ok=True)
            if path.resolve() != (ctx.report_dir / name).resolve():
                shutil.copyfile(path, ctx.report_dir / name)
        except OSError as exc:
            problem = f"{path.name}: cannot be copied into {REPORT_DIR}/ ({exc.strerror})"
            print(error_line(f"fakedist: {problem}"))
            problems.append(problem)


def _write(path: Path, text: str, *, append: bool = False) -> bool:
    """Write (or append) ``text``; on failure (disk full) print one error line, return False."""
    try:
        if append:
            append_file(str(path), text)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(error_line(f"fakedist: cannot write {path} ({exc.strerror})"))
        return False
    return True


def _finish(
    ctx: Context,
    inputs: Inputs,
    cells: Sequence[report.CellResult],
    coverage: report.Coverage | None,
    matrix: Mapping[str, object],
    ok: bool,
    problems: Sequence[str] = (),
) -> int:
    """Annotations, results file, job summary and outputs; the step's exit status.

    Written also when results are missing or unreadable (then the outcome is failure), each
    file on its own, so a full disk loses only what cannot be written."""
    for line in report.annotation_lines(cells):
        print(line)
    for cell in cells:
        if cell.problem is not None:
            print(error_line(f"fakedist: cell {cell.id}: {cell.problem}"))
            ok = False
        elif cell.junit is None:
            print(error_line(f"fakedist: cell {cell.id} produced no test results (see nox output)"))
            ok = False
        elif cell.passed + cell.failed + cell.skipped == 0:
            print(error_line(f"fakedist: cell {cell.id} ran no tests (see the pytest arguments)"))
            ok = False
    if problems:
        ok = False
    if coverage is not None and coverage.percent < inputs.fail_under:
        below = f"coverage {coverage.percent:.2f}% is below fail-under {inputs.fail_under:g}"
        print(error_line(f"fakedist: {below}"))
        ok = False
    summary = report.summary_markdown(
        inputs.session, cells, coverage, inputs.fail_under, _python(inputs), problems
    )
    results = ctx.report_dir / f"results.{ctx.tag}.json"
    text = report.results_json(inputs.session, cells, coverage, inputs.fail_under, problems)
    written = _write(results, text)
    _write(ctx.report_dir / f"summary.{ctx.tag}.md", summary)
    values = report.outputs(cells, coverage, matrix, results if written else None)
    for variable, content in (
        ("GITHUB_OUTPUT", outputs_text(values)),
        ("GITHUB_STEP_SUMMARY", summary),
    ):
        if ctx.env.get(variable):
            _write(Path(ctx.env[variable]), content, append=True)
    passed, failed, skipped = report.totals(cells)
    where = f"report {results}" if written else "no report file"
    print(f"fakedist: {passed} passed, {failed} failed, {skipped} skipped; {where}")
    return 0 if ok and failed == 0 else 1


def _combine(ctx: Context, inputs: Inputs, env: Mapping[str, str], runner: Runner) -> int:
    """session 'coverage': combine the data that matrix jobs uploaded into fakedist-report/."""
    data = sorted(ctx.report_dir.glob(".coverage.*"))
    if not data:
        return _fail(
            InputError("session", f"'coverage' found no .coverage.* files in {ctx.report_dir}")
        )
    _clean(ctx.action_root)
    folder = ctx.action_root / results.COVERAGE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for path in data:
        shutil.copyfile(path, folder / path.name)
    cells = []
    for junit in sorted(ctx.report_dir.glob("junit-*.xml")):
        match = _JUNIT_NAME.fullmatch(junit.name)
        cell_id = match["id"] if match else junit.stem
        torch, variant = _cell_for(cell_id, (), env, ctx.action_root)
        cells.append(_read_cell(junit, cell_id, torch, variant, inputs, ctx))
    problems: list[str] = []
    coverage = _coverage(ctx, env, runner, problems)
    return _finish(ctx, inputs, cells, coverage, {"include": []}, coverage is not None, problems)


def _unwritable(ctx: Context) -> str | None:
    """Why nox could not write where it must (the action's checkout, the workspace), or None."""
    for what, folder, why in (
        ("the action's checkout", ctx.action_root, "nox keeps its environments and results"),
        ("the workspace", ctx.workspace, f"the results go to {REPORT_DIR}/"),
    ):
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            return f"fakedist: {what} {folder} is not writable ({exc.strerror}): {why} there"
    return None


def main_run(
    env: Mapping[str, str], runner: Runner = _subprocess_runner, ctx: Context | None = None
) -> int:
    """Step 2 (in the tools environment): nox for every selected cell, then the report.

    The inputs come from step 1's record (``FAKEDIST_INPUTS``) when set, else from ``env``.
    """
    try:
        env = replay(env)
    except RecordError as exc:
        return _fail(exc)
    ctx = ctx or Context.from_env(env)
    try:
        inputs = read_inputs(env, ctx.workspace)
        if inputs.session == "coverage":
            return _combine(ctx, inputs, child_env(inputs, ctx), runner)
        selection = select(inputs, ctx.action_root, env)
    except InputError as exc:
        return _fail(exc)
    for skipped in selection.skipped:
        print(f"::warning::fakedist: cell {skipped.id} skipped: {skipped.reason}")
    nox_env = child_env(inputs, ctx)
    unwritable = _unwritable(ctx)
    if unwritable:
        print(error_line(unwritable))
        return 2
    _clean(ctx.action_root)
    rc = runner(nox_argv(ctx, inputs.session, inputs.pytest_args), nox_env)
    cells: list[report.CellResult] = []
    produced: list[Path] = []
    for cell in selection.cells:
        junit = results.junit_path(ctx.action_root, cell.id)
        if junit.is_file():
            cells.append(_read_cell(junit, cell.id, cell.torch, cell.variant, inputs, ctx))
            produced.append(junit)
        else:
            cells.append(report.CellResult(cell.id, cell.torch, cell.variant))
    produced += sorted((ctx.action_root / results.COVERAGE_DIR).glob(".coverage.*"))
    problems: list[str] = []
    # before combining: coverage's reports may consume the data files
    _publish(ctx, produced, problems)
    coverage = _coverage(ctx, nox_env, runner, problems) if inputs.coverage else None
    matrix = {"include": [redacted_cell(c) for c in selection.cells]}
    return _finish(ctx, inputs, cells, coverage, matrix, rc == 0, problems)
