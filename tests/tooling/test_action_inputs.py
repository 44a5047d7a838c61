"""fakedist.tooling.action.inputs: every input validated, one-line errors naming the input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fakedist.tooling.action.inputs import (
    DEFAULTS,
    UNRECORDED,
    InputError,
    env_name,
    read_inputs,
    select,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "proj" / "tests").mkdir(parents=True)
    (tmp_path / "proj" / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    return tmp_path


def env(**inputs: str) -> dict[str, str]:
    return {env_name(k.replace("_", "-")): v for k, v in inputs.items()}


def test_env_names_match_action_yml() -> None:
    action = (ROOT / "action.yml").read_text()
    for name in DEFAULTS:
        assert f"{env_name(name)}: ${{{{ inputs.{name} }}}}" in action, name
        assert f"  {name}:\n" in action, name


def test_inputs_reach_the_run_step_only_through_the_validate_steps_record() -> None:
    """One list of inputs in action.yml: the run step reads what validate read and checked."""
    action = (ROOT / "action.yml").read_text()
    validate, run = action.split("- name: Validate inputs", 1)[1].split("- name: Run nox", 1)
    assert validate.count("FAKEDIST_INPUT_") == len(DEFAULTS)
    assert "FAKEDIST_INPUTS: ${{ steps.validate.outputs.inputs }}" in run
    in_env = re.findall(r"(FAKEDIST_INPUT_[A-Z_]+): \$\{\{ inputs\.", run)
    assert in_env == [env_name(name) for name in UNRECORDED]  # credentials stay out of outputs


def test_defaults(workspace: Path) -> None:
    inputs = read_inputs({}, workspace)
    assert inputs.session == "tests-cpu"
    assert inputs.torch == "default"
    assert inputs.project == workspace.resolve()
    assert (inputs.suite, inputs.coverage, inputs.remote_actions) == (True, True, True)
    assert (inputs.tests, inputs.install, inputs.pytest_args) == ((), (), ())
    assert inputs.fail_under == 0.0


def test_full_set_parsed(workspace: Path) -> None:
    inputs = read_inputs(
        env(
            session="cuda",
            torch="2.13, 2.14.1",
            python_version="3.12",
            working_directory="proj",
            tests="tests tests/test_a.py::test_a",
            suite="False",
            install=".[test,dev] pytest-timeout==2.3.1",
            pytest_args="-k 'a or b' -x",
            coverage="TRUE",
            coverage_source="mypkg, other",
            fail_under="87.5",
            index_url="https://mirror.example/whl/{variant}",
            remote_actions="false",
        ),
        workspace,
    )
    assert inputs.kind == "cuda"
    assert inputs.torch == "2.13,2.14.1"
    assert inputs.project == (workspace / "proj").resolve()
    assert inputs.tests == ("tests", "tests/test_a.py::test_a")
    assert inputs.install == (".[test,dev]", "pytest-timeout==2.3.1")
    assert inputs.pytest_args == ("-k", "a or b", "-x")
    assert inputs.coverage_source == ("mypkg", "other")
    assert (inputs.suite, inputs.remote_actions, inputs.fail_under) == (False, False, 87.5)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"session": "gpu"},
            "input 'session': unknown session 'gpu' (expected one of tests-cpu, cuda, coverage)",
        ),
        (
            {"torch": "2.13.x"},
            "input 'torch': '2.13.x' is not a torch version (e.g. 2.13, 2.13.0, all)",
        ),
        (
            {"torch": "all,2.13"},
            "input 'torch': 'all' cannot be combined with versions in 'all,2.13'",
        ),
        (
            {"python_version": "py3"},
            "input 'python-version': 'py3' is not a Python version like 3.12",
        ),
        ({"fail_under": "abc"}, "input 'fail-under': expected a number from 0 to 100, got 'abc'"),
        ({"fail_under": "101"}, "input 'fail-under': expected a number from 0 to 100, got '101'"),
        ({"fail_under": "nan"}, "input 'fail-under': expected a number from 0 to 100, got 'nan'"),
        ({"suite": "yes"}, "input 'suite': expected true or false, got 'yes'"),
        ({"coverage": "1"}, "input 'coverage': expected true or false, got '1'"),
        ({"remote_actions": ""}, "input 'remote-actions': expected true or false, got ''"),
        (
            {"working_directory": "nope"},
            "input 'working-directory': 'nope' does not exist (looked in {ws})",
        ),
        (
            {"working_directory": "proj/tests/test_a.py"},
            "input 'working-directory': 'proj/tests/test_a.py' is not a directory",
        ),
        (
            {"tests": "proj/missing.py"},
            "input 'tests': 'proj/missing.py' does not exist (looked in {ws})",
        ),
        (
            {"tests": "/etc/passwd"},
            "input 'tests': '/etc/passwd' must be a path relative to the repository",
        ),
        ({"tests": "a*b"}, "input 'tests': 'a*b' is not a test path (path or path::test)"),
        (
            {"suite": "false"},
            "input 'tests': is empty and 'suite' is false: there is nothing to run",
        ),
        (
            {"install": "./missing[test]"},
            "input 'install': './missing' does not exist (looked in {ws})",
        ),
        (
            {"install": "pkg>=1"},
            "input 'install': shell metacharacter '>' is not allowed in 'pkg>=1'",
        ),
        (
            {"install": "git+https://x/y"},
            "input 'install': 'git+https://x/y' is not a path or requirement like .[test]",
        ),
        ({"pytest_args": "-k 'a"}, "input 'pytest-args': No closing quotation in \"-k 'a\""),
        (
            {"pytest_args": "--junitxml=x.xml"},
            "input 'pytest-args': '--junitxml=x.xml' is set by the action (use coverage-source)",
        ),
        (
            {"pytest_args": "--co"},
            "input 'pytest-args': '--co' collects tests without running any:"
            " a run of no tests fails",
        ),
        (
            {"pytest_args": "-q --collect-only"},
            "input 'pytest-args': '--collect-only' collects tests without running any:"
            " a run of no tests fails",
        ),
        (
            {"pytest_args": "--basetemp=/tmp/elsewhere"},
            "input 'pytest-args': '--basetemp=/tmp/elsewhere' points outside the repository"
            " (use a path inside it)",
        ),
        (
            {"pytest_args": "--rootdir=/"},
            "input 'pytest-args': '--rootdir=/' points outside the repository"
            " (use a path inside it)",
        ),
        (
            {"pytest_args": "--basetemp ../tmp"},
            "input 'pytest-args': '--basetemp=../tmp' points outside the repository"
            " (use a path inside it)",
        ),
        (
            {"pytest_args": "-o cache_dir=/var/tmp/c"},
            "input 'pytest-args': '-o cache_dir=/var/tmp/c' points outside the repository"
            " (use a path inside it)",
        ),
        ({"shuffle": "yes"}, "input 'shuffle': expected true, false or a seed number, got 'yes'"),
        (
            {"workers": "-2"},
            "input 'workers': expected 0, a number of workers or auto, got '-2'",
        ),
        (
            {"workers": "2"},
            "input 'workers': '2' with coverage: 'true': coverage is measured in one process;"
            " set coverage: 'false' to use workers",
        ),
        ({"coverage_source": "a+b"}, "input 'coverage-source': 'a+b' is not a module name or path"),
        (
            {"index_url": "ftp://x"},
            "input 'index-url': 'ftp://x' is not an http(s) or file URL, or 'default'",
        ),
    ],
)
def test_bad_input_names_the_input(workspace: Path, inputs: dict[str, str], message: str) -> None:
    with pytest.raises(InputError) as info:
        read_inputs(env(**inputs), workspace)
    assert str(info.value) == message.format(ws=workspace)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", sorted(DEFAULTS))
@pytest.mark.parametrize(
    ("value", "char"),
    [
        ("x; rm -rf /", ";"),
        ("$(id)", "$"),
        ("`id`", "`"),
        ("a\nb", "\n"),
        ("a | b", "|"),
        ("a && b", "&"),
        ("a > f", ">"),
    ],
)
def test_shell_metacharacters_refused_in_every_input(
    workspace: Path, name: str, value: str, char: str
) -> None:
    with pytest.raises(InputError) as info:
        read_inputs({env_name(name): value}, workspace)
    assert str(info.value) == (
        f"input '{name}': shell metacharacter {char!r} is not allowed in {value!r}"
    )


@pytest.mark.parametrize("name", ["working-directory", "tests", "install", "coverage-source"])
def test_dotdot_refused_in_paths(workspace: Path, name: str) -> None:
    with pytest.raises(InputError) as info:
        read_inputs({env_name(name): "proj/../.."}, workspace)
    assert str(info.value) == f"input '{name}': '..' is not allowed in 'proj/../..'"


def test_shuffle_and_workers_are_off_by_default(workspace: Path) -> None:
    inputs = read_inputs({}, workspace)
    assert (inputs.shuffle, inputs.workers) == ("", "")
    inputs = read_inputs(env(shuffle="TRUE", workers="auto", coverage="false"), workspace)
    assert (inputs.shuffle, inputs.workers) == ("random", "auto")
    inputs = read_inputs(env(shuffle="12345", workers="0"), workspace)
    assert (inputs.shuffle, inputs.workers) == ("12345", "")


def test_python_without_any_torch_wheel_is_blamed_on_python_version(workspace: Path) -> None:
    inputs = read_inputs(env(torch="2.13", python_version="3.99"), workspace)
    with pytest.raises(InputError) as info:
        select(inputs, ROOT, {})
    assert str(info.value).startswith(
        "input 'python-version': no torch in the matrix has wheels for Python 3.99 (known: 3.8,"
    )


def test_two_patch_releases_of_one_minor_are_refused(workspace: Path) -> None:
    inputs = read_inputs(env(torch="2.13.0, 2.13.1"), workspace)
    with pytest.raises(InputError) as info:
        select(inputs, ROOT, {})
    assert str(info.value) == (
        "input 'torch': 2.13.0 and 2.13.1 are both torch 2.13, and a run has one cell per"
        " minor: choose one"
    )


def test_torch_not_in_matrix(workspace: Path) -> None:
    inputs = read_inputs(env(torch="2.99"), workspace)
    with pytest.raises(InputError) as info:
        select(inputs, ROOT, {})
    assert str(info.value).startswith(
        f"input 'torch': torch 2.99 is not in {ROOT}/matrix/torch.toml"
    )


def test_torch_without_wheel_for_python(workspace: Path) -> None:
    inputs = read_inputs(env(torch="2.1", python_version="3.13"), workspace)
    with pytest.raises(InputError) as info:
        select(inputs, ROOT, {})
    assert str(info.value) == (
        "input 'torch': no runnable torch cell for '2.1' (2.1-cpu: torch 2.1.2 has no wheel for"
        " Python 3.13 (wheels: 3.8, 3.9, 3.10, 3.11))"
    )


def test_select_cells_and_index_override(workspace: Path) -> None:
    inputs = read_inputs(
        env(torch="2.13,2.14", python_version="3.11", index_url="default"), workspace
    )
    cells = select(inputs, ROOT, {}).cells
    assert [(c.id, c.torch, c.index_url) for c in cells] == [
        ("2.13-cpu", "2.13.0", None),
        ("2.14-cpu", "2.14.1", None),
    ]


def test_cuda_without_driver_is_refused(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fakedist.tooling.devices.detect_nvidia_driver", lambda *a, **k: None)
    inputs = read_inputs(env(session="cuda"), workspace)
    with pytest.raises(InputError) as info:
        select(inputs, ROOT, {})
    assert (
        str(info.value) == "input 'session': 'cuda' needs an NVIDIA driver and this runner has none"
    )
