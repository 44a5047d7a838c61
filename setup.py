"""setuptools' build script: pyproject.toml holds the metadata; this adds one step.

The package ships the repository's default torch matrix, ``matrix/torch.toml``, as
``fakedist/tooling/torch.toml`` so that ``python -m fakedist matrix`` and ``doctor`` work
wherever fakedist is installed. The repository keeps one copy, at the top level: wheels
(built from the checkout or from the sdist, which carries it) copy it in here; an editable
install reads it from the checkout (fakedist.tooling.matrix.find_matrix_file).
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MATRIX = Path("matrix") / "torch.toml"  # relative to the source tree being built
PACKAGED = Path("fakedist") / "tooling" / "torch.toml"


class BuildPyWithMatrix(build_py):
    """build_py, plus the default matrix copied into the built package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / PACKAGED
        self.mkpath(str(target.parent))
        self.copy_file(str(MATRIX), str(target))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PACKAGED)]


setup(cmdclass={"build_py": BuildPyWithMatrix})
