"""fakedist.tooling.pytest_args: options, their values and test paths, read as pytest reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakedist.tooling import pytest_args
from fakedist.tooling.action import report

DEFAULTS = ("tests/conformance", "tests/unit")


@pytest.mark.parametrize(
    "posargs",
    [
        ("--ignore", "harness"),
        ("--deselect", "tests/unit/test_cli.py::test_x"),
        ("-k", "tests"),
        ("-ktests",),
        ("-xk", "tests"),
        ("-p", "no:randomly", "-m", "tests"),
        ("--basetemp", "tests", "-x"),
        ("--ignore-glob=tests/*", "-q"),
        ("--debug", "tests/debug.log"),
    ],
)
def test_option_values_that_are_paths_keep_the_default_paths(
    posargs: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("harness", "tests", "tests/unit"):
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path)  # every value above exists as a path here
    argv = pytest_args.final_argv(posargs, DEFAULTS)
    assert argv == pytest_args.PytestArgv((*DEFAULTS, *posargs), keeps_defaults=True)


@pytest.mark.parametrize(
    "posargs",
    [
        ("tests/unit/test_cli.py",),
        ("-x", "tests/unit/test_cli.py::test_x"),
        ("-k", "expr", "nowhere/test_x.py"),
        ("--", "-weird-name.py"),
        ("--fakedist-timeout", "5", "tests/unit"),
    ],
)
def test_positional_test_paths_replace_the_defaults(posargs: tuple[str, ...]) -> None:
    assert pytest_args.final_argv(posargs, DEFAULTS) == pytest_args.PytestArgv(
        posargs, keeps_defaults=False
    )


def test_split() -> None:
    options, positional = pytest_args.split(
        ["-vx", "-kexpr", "--tb=short", "--maxfail", "2", "-p", "no:x", "--lf", "a.py", "--", "-b"]
    )
    assert options == [
        ("-v", None),
        ("-x", None),
        ("-k", "expr"),
        ("--tb", "short"),
        ("--maxfail", "2"),
        ("-p", "no:x"),
        ("--lf", None),
    ]
    assert positional == ["a.py", "-b"]


@pytest.mark.parametrize(
    ("args", "flag"),
    [(("--co",), "--co"), (("-q", "--collect-only"), "--collect-only"), (("-k", "--co"), None)],
)
def test_collect_only(args: tuple[str, ...], flag: str | None) -> None:
    assert pytest_args.collect_only(args) == flag


@pytest.mark.parametrize(
    ("args", "found"),
    [
        (("--basetemp=/tmp/elsewhere",), "--basetemp=/tmp/elsewhere"),
        (("--basetemp", "/tmp/elsewhere"), "--basetemp=/tmp/elsewhere"),
        (("--rootdir=/",), "--rootdir=/"),
        (("-c", "../pytest.ini"), "-c ../pytest.ini"),
        (("--confcutdir", "sub/../.."), "--confcutdir=sub/../.."),
        (("-o", "cache_dir=/var/cache/x"), "-o cache_dir=/var/cache/x"),
        (("/etc",), "/etc"),
        (("--basetemp=.tmp", "-o", "cache_dir=.cache", "tests", "-k", "/etc"), None),
    ],
)
def test_outside_paths(args: tuple[str, ...], found: str | None, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "project").mkdir(parents=True)
    assert pytest_args.outside_paths(args, repo / "project", repo) == found


def test_absolute_path_inside_the_repository_is_fine(tmp_path: Path) -> None:
    inside = f"--basetemp={tmp_path / 'tmp'}"
    assert pytest_args.outside_paths([inside], tmp_path, tmp_path) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('<testsuite tests="1"><testcase classname="t" name="x"/></testsuite>', None),
        (
            '<testsuites><testsuite tests="0" /></testsuites>',
            "pytest ran no tests (junit-2.13-cpu.xml lists none): check the test paths and any"
            " -k, -m, --deselect or --ignore in the pytest arguments",
        ),
        (
            "",
            "pytest's results cannot be read: junit-2.13-cpu.xml: the file is empty"
            " (0 bytes; disk full?)",
        ),
    ],
)
def test_no_tests_problem(text: str, problem: str | None, tmp_path: Path) -> None:
    junit = tmp_path / "junit-2.13-cpu.xml"
    junit.write_text(text)
    assert report.no_tests_problem(junit) == problem
