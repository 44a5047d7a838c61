"""``python -m fakedist matrix|doctor`` as users run it (subprocesses), plus bad input.

The doctor on an installed torch: tests/unit/test_doctor.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakedist.tooling import cli, devices

ROOT = Path(__file__).resolve().parents[2]
PY = f"{sys.version_info[0]}.{sys.version_info[1]}"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FAKEDIST_")}
    return subprocess.run(
        [sys.executable, "-m", "fakedist", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def cpu_entry(minor: str, version: str) -> dict[str, str]:
    return {
        "id": f"{minor}-cpu",
        "torch": version,
        "minor": minor,
        "variant": "cpu",
        "python": PY,
        "index_url": "https://download.pytorch.org/whl/cpu",
        "requirement": f"torch=={version}",
    }


def test_matrix_json_is_the_default_github_matrix() -> None:
    proc = run("matrix", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "include": [cpu_entry("2.13", "2.13.0"), cpu_entry("2.14", "2.14.1")]
    }
    assert proc.stderr == ""


def test_matrix_json_overrides_and_skips_on_stderr() -> None:
    env = {
        "FAKEDIST_TORCH": "2.1,2.13",
        "FAKEDIST_PYTHON": "3.12",
        "FAKEDIST_TORCH_INDEX": "default",
    }
    proc = run("matrix", "--json", "--variant", "cpu", env=env)
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["include"]
    assert (entry["id"], entry["python"], entry["index_url"]) == ("2.13-cpu", "3.12", "default")
    assert proc.stderr == (
        "skipped 2.1-cpu: torch 2.1.2 has no wheel for Python 3.12 (wheels: 3.8, 3.9, 3.10, 3.11)\n"
    )


def test_matrix_text() -> None:
    proc = run("matrix", env={"FAKEDIST_TORCH": "2.15", "FAKEDIST_PYTHON": "3.11"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "2.15-cpu: torch==2.15.0 python 3.11 from https://download.pytorch.org/whl/cpu\n"
    )


@pytest.mark.parametrize("fmt", [(), ("--json",)])
def test_matrix_never_prints_index_credentials(fmt: tuple[str, ...]) -> None:
    env = {
        "FAKEDIST_TORCH": "2.13",
        "FAKEDIST_PYTHON": "3.11",
        "FAKEDIST_TORCH_INDEX": "https://ci-bot:s3cret-token@mirror.example/whl/{variant}",
    }
    proc = run("matrix", *fmt, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "s3cret" not in proc.stdout + proc.stderr
    assert "ci-bot" not in proc.stdout + proc.stderr
    assert "https://***@mirror.example/whl/cpu" in proc.stdout


def test_matrix_nothing_selected_exits_1() -> None:
    proc = run("matrix", env={"FAKEDIST_TORCH": "2.1", "FAKEDIST_PYTHON": "3.13"})
    assert proc.returncode == 1
    assert proc.stdout.startswith("skipped 2.1-cpu: torch 2.1.2 has no wheel for Python 3.13")
    assert proc.stderr == "fakedist matrix: no cell selected\n"


def test_matrix_cuda_uses_the_detected_driver(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        devices, "detect_nvidia_driver", lambda: devices.DriverVersion.parse("550.54.14")
    )
    for key in [k for k in os.environ if k.startswith("FAKEDIST_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FAKEDIST_TORCH", "2.5,2.9")
    monkeypatch.chdir(ROOT)
    assert cli.main(["matrix", "--variant", "cuda", "--json"]) == 0
    ids = [e["id"] for e in json.loads(capsys.readouterr().out)["include"]]
    assert ids == ["2.5-cu124", "2.9-cu128"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["matrix", "--variant", "gpu"],
            {},
            "python -m fakedist matrix: error: argument --variant: invalid choice: 'gpu' "
            "(choose from cpu, cuda)",
        ),
        (["matrix", "--bogus"], {}, "python -m fakedist: error: unrecognized arguments: --bogus"),
        (
            ["launch"],
            {},
            "python -m fakedist: error: argument command: invalid choice: 'launch' "
            "(choose from matrix, doctor)",
        ),
        (
            ["matrix"],
            {"FAKEDIST_TORCH": "2.x"},
            "fakedist matrix: FAKEDIST_TORCH: '2.x' is not a "
            "torch version (use e.g. 2.13, 2.13.0, all, default, nightly)",
        ),
        (
            ["matrix"],
            {"FAKEDIST_CUDA": "cu999"},
            "fakedist matrix: FAKEDIST_CUDA: unknown variant "
            "'cu999' (known: cpu, cu118, cu121, cu124, cu126, cu128, cu129, cu130, cu132)",
        ),
        (
            ["matrix", "--file", "nowhere.toml"],
            {},
            "fakedist matrix: nowhere.toml: cannot read the matrix file "
            "(No such file or directory)",
        ),
    ],
)
def test_bad_input_one_line_exit_2(args: list[str], env: dict[str, str], message: str) -> None:
    proc = run(*args, env=env)
    assert proc.returncode == 2
    # argparse quotes choices differently across Python versions: compare without quotes
    assert proc.stderr.replace("'", "") == message.replace("'", "") + "\n"
    assert proc.stdout == ""


def test_bad_matrix_file_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text("schema = 1\n[defaults]\ntorch = [\n", encoding="utf-8")
    proc = run("matrix", "--file", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"fakedist matrix: {bad}: TOML syntax error: ")
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_doctor_without_torch_exits_1_with_the_reason() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; "
        "from fakedist.tooling.cli import main; sys.exit(main(['doctor']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("fakedist doctor: torch is not importable (")
    assert proc.stderr.count("\n") == 1
    assert proc.stdout.splitlines()[0].startswith(f"python:        {sys.version.split()[0]} (")
