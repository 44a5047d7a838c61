"""``python -m fakedist matrix|doctor``: the selected torch cells, and what this machine has.

``matrix`` never imports torch. ``doctor`` reads it through :mod:`fakedist.tooling.probe`, and
exits 1 with the reason when something fakedist needs is missing. Bad input: one line on
stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from fakedist.tooling import devices, probe
from fakedist.tooling.devices import DriverVersion
from fakedist.tooling.matrix import (
    CudaChoiceError,
    Matrix,
    MatrixError,
    choose_cuda_variant,
    find_matrix_file,
    load_matrix,
    select_cells,
)
from fakedist.tooling.redact import redact_url, redacted_cell

__all__ = ["main"]

_CHOICES = re.compile(r"\(choose from [^)]*\)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse quotes choices on some Pythons only (3.12.8+): one form everywhere.
        message = _CHOICES.sub(lambda m: m[0].replace("'", ""), message)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m fakedist", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    mat = sub.add_parser("matrix", help="print the torch cells selected from matrix data")
    mat.add_argument("--variant", choices=("cpu", "cuda"), help="cpu builds or CUDA builds")
    mat.add_argument("--json", action="store_true", help='print {"include": [...]} for GitHub')
    mat.add_argument(
        "--file",
        help="matrix TOML file (default: $FAKEDIST_MATRIX, else ./matrix/torch.toml, else"
        " the default matrix fakedist ships)",
    )
    doc = sub.add_parser("doctor", help="torch, devices, driver and fake-backend features")
    doc.add_argument("--file", help="matrix TOML file used for the CUDA variant choice")
    doc.add_argument(
        "--require-accelerator", action="store_true", help="exit 1 when torch sees no accelerator"
    )
    return parser


def _load(file: str | None) -> Matrix:
    return load_matrix(file or find_matrix_file(os.environ))


def _matrix(args: argparse.Namespace) -> int:
    matrix = _load(args.file)
    driver = devices.detect_nvidia_driver() if args.variant == "cuda" else None
    selection = select_cells(matrix, os.environ, kind=args.variant, driver=driver)
    for skipped in selection.skipped:
        print(
            f"skipped {skipped.id}: {skipped.reason}", file=sys.stderr if args.json else sys.stdout
        )
    if args.json:  # index URLs without credentials, as everything printed
        print(json.dumps({"include": [redacted_cell(c) for c in selection.cells]}))
    else:
        for cell in selection.cells:
            where = redact_url(cell.index_url) if cell.index_url else "installer configuration"
            print(f"{cell.id}: {cell.requirement} python {cell.python} from {where}")
    if not selection.cells:
        print("fakedist matrix: no cell selected", file=sys.stderr)
        return 1
    return 0


def _cuda_choice(torch_version: str, file: str | None, driver: DriverVersion | None) -> str:
    if driver is None:
        return "cpu (no NVIDIA driver found)"
    try:
        matrix = _load(file)
    except MatrixError as exc:
        return f"unknown ({exc})"
    minor = ".".join(torch_version.split("+")[0].split(".")[:2])
    release = matrix.release(minor)
    if release is None:
        return f"unknown (torch {minor} is not in {matrix.path})"
    try:
        return choose_cuda_variant(release, driver).name
    except CudaChoiceError as exc:
        return f"none ({exc})"


def _doctor(args: argparse.Namespace) -> int:
    rows: list[tuple[str, str]] = [
        ("python", f"{platform.python_version()} ({sys.executable})"),
    ]
    driver = devices.detect_nvidia_driver()
    rows.append(("nvidia driver", str(driver) if driver else "none"))
    try:
        build = probe.torch_build()
        rows.append(("torch", f"{build.version} ({build.label} build) at {build.location}"))
        info = probe.accelerator()
        rows.append(("devices", info.describe()))
        rows.append(("cuda variant", _cuda_choice(build.version, args.file, driver)))
        rows += [(f"fake: {k}", v) for k, v in probe.fake_features()]
    except probe.ProbeError as exc:
        _print_rows(rows)
        print(f"fakedist doctor: {exc}", file=sys.stderr)
        return 1
    ours, torchs = probe.backends()
    rows.append(("fakedist backends", ", ".join(ours)))
    rows.append(("torch backends", ", ".join(torchs)))
    _print_rows(rows)
    if args.require_accelerator and info.count == 0:
        print(
            f"fakedist doctor: torch {build.version} ({build.label} build) sees no accelerator"
            f" (nvidia driver: {driver or 'none'})",
            file=sys.stderr,
        )
        return 1
    return 0


def _print_rows(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key + ':':<{width + 1}} {value}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fakedist`` and the ``fakedist`` script."""
    args = _parser().parse_args(argv)
    try:
        return _matrix(args) if args.command == "matrix" else _doctor(args)
    except MatrixError as exc:
        print(f"fakedist {args.command}: {exc}", file=sys.stderr)
        return 2
