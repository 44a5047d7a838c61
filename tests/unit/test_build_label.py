"""The report header says when a CUDA build of torch runs on CPU (PyPI's Linux wheels)."""

from __future__ import annotations

import pytest
import torch

import fakedist.accelerator
from fakedist import plugin
from fakedist.accelerator import AcceleratorInfo


@pytest.mark.parametrize(
    ("cuda", "devices", "expected"),
    [
        ("13.0", AcceleratorInfo(None, 0), "(cuda 13.0 build, running on CPU), devices: none"),
        ("13.0", AcceleratorInfo("cuda", 2), "(cuda 13.0 build), devices: 2 x cuda"),
        (None, AcceleratorInfo(None, 0), "(cpu build), devices: none"),
    ],
)
def test_header_names_the_build_and_where_it_runs(
    monkeypatch: pytest.MonkeyPatch, cuda: str | None, devices: AcceleratorInfo, expected: str
) -> None:
    monkeypatch.setattr(torch.version, "cuda", cuda)
    monkeypatch.setattr(fakedist.accelerator, "accelerator_info", lambda: devices)
    line = plugin.describe_environment()
    assert line.startswith(f"torch {torch.__version__} {expected}, backends: ")
