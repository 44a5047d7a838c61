"""Arguments for pytest, read the way pytest reads them: options, their values, test paths.

The nox sessions append their posargs (and the Action its ``pytest-args``) to a pytest
command that already names the suite's test paths. Only real positional arguments replace
those paths: an option's value (``--ignore other``, ``--deselect tests/x.py::t``,
``-k tests``) never does, whether or not it happens to name an existing file. Pure
functions, no pytest import: options that take a value are listed here (pytest 9 and the
plugins fakedist installs); give an unlisted plugin option its value as ``--opt=value``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = [
    "COLLECT_ONLY",
    "PytestArgv",
    "collect_only",
    "collect_only_message",
    "final_argv",
    "outside_paths",
    "split",
]

# Long options that take a value (pytest 9.2, pytest-xdist, pytest-randomly, pytest-cov,
# fakedist's plugin). A value may follow as the next argument or after '='.
_VALUE_LONG = frozenset(
    {
        *("--maxfail", "--pdbcls", "--capture", "--lfnf", "--last-failed-no-failures"),
        *("--durations", "--durations-min", "--verbosity", "--report-chars", "--tb"),
        *("--show-capture", "--color", "--code-highlight", "--pastebin", "--junitxml"),
        *("--junit-xml", "--junitprefix", "--junit-prefix", "--pythonwarnings"),
        *("--max-warnings", "--ignore", "--ignore-glob", "--deselect", "--confcutdir"),
        *("--import-mode", "--doctest-report", "--doctest-glob", "--config-file"),
        *("--rootdir", "--basetemp", "--override-ini", "--assert", "--log-level"),
        *("--log-format", "--log-date-format", "--log-cli-level", "--log-cli-format"),
        *("--log-cli-date-format", "--log-file", "--log-file-mode", "--log-file-level"),
        *("--log-file-format", "--log-file-date-format", "--log-auto-indent"),
        *("--log-disable", "--numprocesses", "--maxprocesses", "--max-worker-restart"),
        *("--dist", "--tx", "--rsyncdir", "--randomly-seed", "--cov-report"),
        *("--cov-config", "--cov-fail-under", "--cov-precision", "--cov-context"),
        "--fakedist-timeout",
    }
)
# Options whose value is optional: argparse takes the next argument unless it is an option.
_OPTIONAL_LONG = frozenset({"--debug", "--cache-show", "--cov"})
# Single-letter options that take a value: -k -m -p -r -c -o -W -n.
_VALUE_SHORT = frozenset("kmprcoWn")
# Options whose value is a file or directory pytest reads, writes or deletes.
_PATH_OPTIONS = frozenset(
    {
        *("--basetemp", "--rootdir", "-c", "--config-file", "--confcutdir", "--log-file"),
        *("--debug", "--junitxml", "--junit-xml", "--cov-config", "--rsyncdir"),
    }
)
# ``-o key=value`` settings that name a file or directory.
_PATH_INI = frozenset({"cache_dir", "log_file", "junit_logging_file"})
COLLECT_ONLY = ("--co", "--collect-only", "--collectonly")


@dataclass(frozen=True)
class PytestArgv:
    """The arguments to hand to pytest, and whether the default test paths are in them."""

    argv: tuple[str, ...]
    keeps_defaults: bool


def split(args: Sequence[str]) -> tuple[list[tuple[str, str | None]], list[str]]:
    """``args`` as ``(option, value)`` pairs (value None for a flag) and positional arguments.

    ``-xk expr`` is ``-x`` and ``-k expr``; ``--opt=value`` keeps its value; everything
    after ``--`` is positional, as for pytest.
    """
    options: list[tuple[str, str | None]] = []
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional += args[i:]
            break
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if eq:
                options.append((name, value))
            elif i < len(args) and (
                name in _VALUE_LONG or (name in _OPTIONAL_LONG and not args[i].startswith("-"))
            ):
                options.append((name, args[i]))
                i += 1
            else:
                options.append((name, None))
        elif arg.startswith("-") and len(arg) > 1:
            for at, letter in enumerate(arg[1:], start=2):
                if letter in _VALUE_SHORT:
                    rest = arg[at:]
                    if rest:
                        options.append((f"-{letter}", rest))
                    elif i < len(args):
                        options.append((f"-{letter}", args[i]))
                        i += 1
                    else:
                        options.append((f"-{letter}", None))
                    break
                options.append((f"-{letter}", None))
        else:
            positional.append(arg)
    return options, positional


def final_argv(posargs: Sequence[str], default_paths: Sequence[str]) -> PytestArgv:
    """pytest's arguments: ``default_paths`` unless ``posargs`` name test paths themselves."""
    _, positional = split(posargs)
    if positional:
        return PytestArgv(tuple(posargs), keeps_defaults=False)
    return PytestArgv((*default_paths, *posargs), keeps_defaults=True)


def collect_only(args: Sequence[str]) -> str | None:
    """The collect-only flag in ``args`` (a run that executes no test), or None."""
    options, _ = split(args)
    return next((name for name, _ in options if name in COLLECT_ONLY), None)


def collect_only_message(flag: str, where: str) -> str:
    """The one line that refuses a collect-only run where tests must run."""
    return (
        f"{where}: {flag!r} collects tests without running any, and a run of no tests"
        " cannot pass; list them with python -m pytest --collect-only instead"
    )


def _escapes(value: str, base: Path, root: Path) -> bool:
    if ".." in PurePosixPath(value).parts:
        return True
    target = Path(value) if PurePosixPath(value).is_absolute() else base / value
    try:
        target.resolve().relative_to(root.resolve())
    except ValueError:
        return True
    return False


def outside_paths(args: Sequence[str], base: Path, root: Path) -> str | None:
    """The first argument that points outside ``root`` (relative paths start at ``base``):
    a path option's value, a ``-o cache_dir=...`` setting or a test path; None if none does.
    Shown as the user wrote it (``--basetemp=/tmp/x``)."""
    options, positional = split(args)
    for name, value in options:
        if value is None:
            continue
        if name in _PATH_OPTIONS and _escapes(value, base, root):
            return f"{name}={value}" if name.startswith("--") else f"{name} {value}"
        if name in ("-o", "--override-ini"):
            key, eq, setting = value.partition("=")
            if eq and key.strip() in _PATH_INI and _escapes(setting.strip(), base, root):
                return f"{name} {value}"
    for path in positional:
        if _escapes(path.split("::")[0], base, root):
            return path
    return None
