"""The Action's inputs: read from ``FAKEDIST_INPUT_*`` variables and validated, all of them.

Every input is checked before anything runs. A bad one raises :class:`InputError` whose
message is one line naming the input and the bad value; the caller prints it as
``::error::`` and exits non-zero. Nothing here executes or installs anything.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fakedist.tooling import devices, matrix, pytest_args
from fakedist.tooling.matrix import (
    ENV_INDEX,
    ENV_PYTHON,
    ENV_TORCH,
    Kind,
    MatrixError,
    Selection,
    find_matrix_file,
    load_matrix,
    select_cells,
)

__all__ = [
    "DEFAULTS",
    "ENV_RECORD",
    "SESSIONS",
    "UNRECORDED",
    "InputError",
    "Inputs",
    "RecordError",
    "env_name",
    "read_inputs",
    "record",
    "replay",
    "select",
]

# Input name -> default, exactly as in action.yml (strings).
DEFAULTS: dict[str, str] = {
    "session": "tests-cpu",
    "torch": "default",
    "python-version": "",
    "working-directory": ".",
    "tests": "",
    "suite": "true",
    "install": "",
    "pytest-args": "",
    "coverage": "true",
    "coverage-source": "",
    "fail-under": "0",
    "index-url": "",
    "remote-actions": "true",
    "shuffle": "false",
    "workers": "0",
}
SESSIONS = ("tests-cpu", "cuda", "coverage")
# The validate step's record of the inputs (its ``inputs`` output), which the run step reads;
# index-url may carry credentials, never written to an output: it reaches both steps by env.
ENV_RECORD = "FAKEDIST_INPUTS"
UNRECORDED = ("index-url",)

# Characters a shell would act on; refused in every input even though no shell is used.
_METACHARS = (";", "|", "&", "`", "$", "<", ">", "\n", "\r", "\0")
_PATH_INPUTS = ("working-directory", "tests", "install", "coverage-source")
# the matrix's own version patterns, plus the words FAKEDIST_TORCH accepts
_TORCH_TOKEN = re.compile(
    rf"default|all|nightly|{matrix.MINOR_PATTERN.pattern}|{matrix.RELEASE_PATTERN.pattern}"
)
_PYTHON = matrix.PYTHON_PATTERN
_PATHISH = re.compile(r"[A-Za-z0-9_.\-/]+")
_TEST = re.compile(r"[A-Za-z0-9_.\-/]+(?:::[^\s:][^\s]*)?")
_INSTALL = re.compile(r"[A-Za-z0-9_.\-/]+(?:\[[A-Za-z0-9_,.\-]+\])?(?:==[A-Za-z0-9_.+!\-]+)?")
_MODULE_OR_PATH = re.compile(r"[A-Za-z0-9_.\-/]+")
_URL = re.compile(r"(?:https?|file)://[^\s/]*\S*")
_RESERVED_PYTEST = ("--junitxml", "--junit-xml", "--cov")
_SEED = re.compile(r"\d{1,10}")
_WORKERS = re.compile(r"auto|\d{1,3}")


class InputError(ValueError):
    """A bad input; the message is one line naming the input and the value."""

    def __init__(self, name: str, problem: str) -> None:
        self.input = name
        super().__init__(f"input '{name}': {problem}")


def env_name(name: str) -> str:
    """The environment variable action.yml maps an input to: ``FAKEDIST_INPUT_FAIL_UNDER``."""
    return "FAKEDIST_INPUT_" + name.upper().replace("-", "_")


class RecordError(ValueError):
    """``FAKEDIST_INPUTS`` is not what the validate step wrote; the message is one line."""


def _recorded_names() -> set[str]:
    return {env_name(name) for name in DEFAULTS if name not in UNRECORDED}


def record(env: Mapping[str, str]) -> str:
    """The inputs in ``env`` as given, but those in UNRECORDED, as one JSON line: what the
    validate step hands on."""
    values = {
        env_name(name): env.get(env_name(name), default)
        for name, default in DEFAULTS.items()
        if name not in UNRECORDED
    }
    return json.dumps(values, separators=(",", ":"))


def replay(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the inputs of its ``FAKEDIST_INPUTS`` record, when it has one (the run
    step's case); they are validated again by :func:`read_inputs`, as any input is."""
    text = env.get(ENV_RECORD, "")
    rest = {k: v for k, v in env.items() if k != ENV_RECORD}
    if not text:
        return rest
    try:
        values = json.loads(text)
    except ValueError:
        values = None
    names = _recorded_names()
    if (
        not isinstance(values, dict)
        or set(values) != names
        or not all(isinstance(v, str) for v in values.values())
    ):
        raise RecordError(
            f"{ENV_RECORD}: not the validate step's record of the inputs: {_show(text)}"
        )
    return {**{k: v for k, v in rest.items() if k not in names}, **values}


def _show(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


@dataclass(frozen=True)
class Inputs:
    """Validated inputs, parsed into the types the run needs."""

    session: str
    torch: str  # FAKEDIST_TORCH form: "default", "all" or "2.13,2.14.1"
    python_version: str  # "" = the runner's Python
    project: Path  # absolute: the workspace joined with working-directory
    tests: tuple[str, ...]
    suite: bool
    install: tuple[str, ...]
    pytest_args: tuple[str, ...]
    coverage: bool
    coverage_source: tuple[str, ...]
    fail_under: float
    index_url: str  # "" = the matrix's index URLs; "default" = the installer's configuration
    remote_actions: bool
    shuffle: str = ""  # "" = test order as written; "random" or a seed
    workers: str = ""  # "" = one process; "auto" or a number of pytest-xdist workers

    @property
    def kind(self) -> Kind:
        return "cuda" if self.session == "cuda" else "cpu"


def _raw(env: Mapping[str, str]) -> dict[str, str]:
    values = {name: env.get(env_name(name), default) for name, default in DEFAULTS.items()}
    for name, value in values.items():
        for char in _METACHARS:
            if char in value:
                raise InputError(
                    name, f"shell metacharacter {char!r} is not allowed in {_show(value)}"
                )
        if name in _PATH_INPUTS and ".." in value:
            raise InputError(name, f"'..' is not allowed in {_show(value)}")
    return {name: value.strip() for name, value in values.items()}


def _bool(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise InputError(name, f"expected true or false, got {_show(value)}")
    return lowered == "true"


def _relative(name: str, token: str, base: Path, *, must_exist: bool = True) -> Path:
    if PurePosixPath(token).is_absolute():
        raise InputError(name, f"{token!r} must be a path relative to the repository")
    path = base / token
    if must_exist and not path.exists():
        raise InputError(name, f"{token!r} does not exist (looked in {base})")
    return path


def _torch(value: str) -> str:
    tokens = [t for t in re.split(r"[\s,]+", value) if t] or ["default"]
    for token in tokens:
        if not _TORCH_TOKEN.fullmatch(token):
            raise InputError("torch", f"{token!r} is not a torch version (e.g. 2.13, 2.13.0, all)")
        if token in ("default", "all") and len(tokens) > 1:
            raise InputError(
                "torch", f"{token!r} cannot be combined with versions in {_show(value)}"
            )
    return ",".join(tokens)


def _fail_under(value: str) -> float:
    try:
        number = float(value or "0")
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise InputError("fail-under", f"expected a number from 0 to 100, got {_show(value)}")
    return number


def _pytest_args(value: str, project: Path, workspace: Path) -> tuple[str, ...]:
    try:
        args = tuple(shlex.split(value))
    except ValueError as exc:
        raise InputError("pytest-args", f"{exc} in {_show(value)}") from None
    for arg in args:
        if arg.startswith(_RESERVED_PYTEST):
            raise InputError("pytest-args", f"{arg!r} is set by the action (use coverage-source)")
    flag = pytest_args.collect_only(args)
    if flag:
        raise InputError(
            "pytest-args", f"{flag!r} collects tests without running any: a run of no tests fails"
        )
    outside = pytest_args.outside_paths(args, project, workspace)
    if outside:
        raise InputError(
            "pytest-args", f"{outside!r} points outside the repository (use a path inside it)"
        )
    return args


def _shuffle(value: str) -> str:
    lowered = value.lower()
    if lowered in ("", "false"):
        return ""
    if lowered == "true":
        return "random"
    if not _SEED.fullmatch(value):
        raise InputError("shuffle", f"expected true, false or a seed number, got {_show(value)}")
    return value


def _workers(value: str) -> str:
    if not _WORKERS.fullmatch(value or "0"):
        raise InputError("workers", f"expected 0, a number of workers or auto, got {_show(value)}")
    return "" if value in ("", "0") or value.strip("0") == "" else value.lstrip("0")


def _tokens(name: str, value: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    tokens = tuple(value.split())
    for token in tokens:
        if not pattern.fullmatch(token):
            raise InputError(name, f"{token!r} is not {what}")
    return tokens


def read_inputs(env: Mapping[str, str], workspace: Path) -> Inputs:
    """Validate every input in ``env``; paths are checked relative to ``workspace``."""
    raw = _raw(env)
    session = raw["session"]
    if session not in SESSIONS:
        raise InputError(
            "session", f"unknown session {session!r} (expected one of {', '.join(SESSIONS)})"
        )
    python_version = raw["python-version"]
    if python_version and not _PYTHON.fullmatch(python_version):
        raise InputError("python-version", f"{python_version!r} is not a Python version like 3.12")
    workdir = raw["working-directory"] or "."
    if not _PATHISH.fullmatch(workdir):
        raise InputError("working-directory", f"{workdir!r} is not a plain relative path")
    project = _relative("working-directory", workdir, workspace).resolve()
    if not project.is_dir():
        raise InputError("working-directory", f"{workdir!r} is not a directory")
    tests = _tokens("tests", raw["tests"], _TEST, "a test path (path or path::test)")
    for token in tests:
        _relative("tests", token.split("::")[0], project)
    install = _tokens("install", raw["install"], _INSTALL, "a path or requirement like .[test]")
    for token in install:
        if token.startswith(".") or "/" in token:
            _relative("install", token.split("[")[0], project)
    sources = tuple(t for t in re.split(r"[\s,]+", raw["coverage-source"]) if t)
    for token in sources:
        if not _MODULE_OR_PATH.fullmatch(token):
            raise InputError("coverage-source", f"{token!r} is not a module name or path")
    index_url = raw["index-url"]
    if index_url and index_url != "default" and not _URL.fullmatch(index_url):
        raise InputError("index-url", f"{index_url!r} is not an http(s) or file URL, or 'default'")
    inputs = Inputs(
        session=session,
        torch=_torch(raw["torch"]),
        python_version=python_version,
        project=project,
        tests=tests,
        suite=_bool("suite", raw["suite"]),
        install=install,
        pytest_args=_pytest_args(raw["pytest-args"], project, workspace),
        coverage=_bool("coverage", raw["coverage"]),
        coverage_source=sources,
        fail_under=_fail_under(raw["fail-under"]),
        index_url=index_url,
        remote_actions=_bool("remote-actions", raw["remote-actions"]),
        shuffle=_shuffle(raw["shuffle"]),
        workers=_workers(raw["workers"]),
    )
    if session != "coverage" and not inputs.suite and not inputs.tests:
        raise InputError("tests", "is empty and 'suite' is false: there is nothing to run")
    if inputs.workers and inputs.coverage:
        raise InputError(
            "workers",
            f"{raw['workers']!r} with coverage: 'true': coverage is measured in one process;"
            " set coverage: 'false' to use workers",
        )
    return inputs


def matrix_env(inputs: Inputs) -> dict[str, str]:
    """The ``FAKEDIST_*`` overrides nox and the matrix see for these inputs."""
    env = {ENV_TORCH: inputs.torch}
    if inputs.python_version:
        env[ENV_PYTHON] = inputs.python_version
    if inputs.index_url:
        env[ENV_INDEX] = inputs.index_url
    return env


def select(inputs: Inputs, action_root: Path, env: Mapping[str, str]) -> Selection:
    """The matrix cells these inputs run; bad torch versions become InputError('torch')."""
    try:
        matrix = load_matrix(find_matrix_file(env, action_root))
    except MatrixError as exc:
        raise InputError("torch", f"the action's matrix is broken: {exc}") from None
    driver = None
    if inputs.kind == "cuda":
        driver = devices.detect_nvidia_driver()
        if driver is None:
            raise InputError("session", "'cuda' needs an NVIDIA driver and this runner has none")
    overrides = {
        **{k: v for k, v in env.items() if k.startswith("FAKEDIST_")},
        **matrix_env(inputs),
    }
    try:
        selection = select_cells(matrix, overrides, kind=inputs.kind, driver=driver)
    except MatrixError as exc:
        message = str(exc)
        for variable in (ENV_TORCH, ENV_PYTHON, ENV_INDEX):
            message = message.replace(f"{variable}: ", "")
        name = {ENV_PYTHON: "python-version", ENV_INDEX: "index-url"}.get(
            str(exc).split(":")[0], "torch"
        )
        raise InputError(name, message) from None
    if not selection.cells:
        reasons = "; ".join(f"{s.id}: {s.reason}" for s in selection.skipped)
        pythons = {py for release in matrix.releases for py in release.python}
        if inputs.python_version and inputs.python_version not in pythons:
            known = ", ".join(sorted(pythons, key=lambda v: tuple(map(int, v.split(".")))))
            raise InputError(
                "python-version",
                f"no torch in the matrix has wheels for Python {inputs.python_version}"
                f" (known: {known})",
            )
        raise InputError("torch", f"no runnable torch cell for {inputs.torch!r} ({reasons})")
    return selection
