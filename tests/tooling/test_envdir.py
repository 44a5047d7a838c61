"""Where nox creates its environments, and the one line when it cannot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakedist.tooling import envdir


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nox", "-s", "unit"], "root/.nox"),
        (["nox", "--envdir", "envs", "-s", "unit"], "root/envs"),
        (["nox", "--envdir=/abs/envs"], "/abs/envs"),
        (["nox", "--envdir", "a", "--envdir", "b"], "root/b"),
        (["nox", "--envdir"], "root/.nox"),  # nox itself refuses the missing value
    ],
)
def test_envdir_reads_noxs_command_line(argv: list[str], expected: str) -> None:
    assert envdir.envdir(Path("root"), argv) == Path(expected)


def test_a_writable_folder_has_no_problem(tmp_path: Path) -> None:
    assert envdir.problem(tmp_path, ["nox"]) is None
    assert envdir.problem(tmp_path, ["nox", "--envdir", "deep/er/envs"]) is None
    assert not (tmp_path / ".nox").exists()  # the check creates nothing


def test_a_file_in_the_way_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("", encoding="utf-8")
    message = envdir.problem(tmp_path, ["nox", "--envdir", "blocker/envs"])
    assert message == (
        f"fakedist: nox cannot create its environments in {tmp_path / 'blocker' / 'envs'}"
        f" ({tmp_path / 'blocker'} is not a folder); run nox with --envdir <a writable folder>"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into folders without write permission")
def test_a_folder_without_write_permission_is_one_line(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        message = envdir.problem(locked, ["nox"])
    finally:
        locked.chmod(0o755)
    assert message is not None
    assert f"in {locked / '.nox'} (no permission to write in {locked});" in message
