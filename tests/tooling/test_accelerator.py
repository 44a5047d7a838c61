"""fakedist.accelerator: what torch sees, read from a stand-in torch module (no torch needed)."""

from __future__ import annotations

import sys
import types

import pytest

from fakedist.accelerator import AcceleratorInfo, accelerator_info


def test_accelerator_info_describe() -> None:
    assert AcceleratorInfo(None, 0).describe() == "none"
    assert AcceleratorInfo("cuda", 0).describe() == "none"
    assert AcceleratorInfo("cuda", 2).describe() == "2 x cuda"
    assert AcceleratorInfo("mps", 1).describe() == "1 x mps"


class _Device:
    def __init__(self, kind: str) -> None:
        self.type = kind


def _fake_torch(accelerator: object | None, cuda_count: int = 0) -> types.ModuleType:
    """A stand-in ``torch`` module: only what accelerator_info() touches."""
    torch = types.ModuleType("torch")
    if accelerator is not None:
        torch.accelerator = accelerator  # type: ignore[attr-defined]
    torch.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_available=lambda: cuda_count > 0, device_count=lambda: cuda_count
    )
    return torch


def _raise() -> None:
    raise RuntimeError("Cannot access accelerator device when none is available.")


@pytest.mark.parametrize(
    ("torch", "expected"),
    [
        # torch 2.6: current_accelerator() raises without an accelerator
        (
            _fake_torch(
                types.SimpleNamespace(
                    is_available=lambda: False, current_accelerator=_raise, device_count=lambda: 0
                )
            ),
            AcceleratorInfo(None, 0),
        ),
        # torch >= 2.7 without an accelerator: None
        (
            _fake_torch(
                types.SimpleNamespace(
                    is_available=lambda: True,
                    current_accelerator=lambda: None,
                    device_count=lambda: 0,
                )
            ),
            AcceleratorInfo(None, 0),
        ),
        (
            _fake_torch(
                types.SimpleNamespace(
                    is_available=lambda: True,
                    current_accelerator=lambda: _Device("cuda"),
                    device_count=lambda: 2,
                )
            ),
            AcceleratorInfo("cuda", 2),
        ),
        # torch < 2.6: no torch.accelerator, torch.cuda decides
        (_fake_torch(None, cuda_count=4), AcceleratorInfo("cuda", 4)),
        (_fake_torch(None, cuda_count=0), AcceleratorInfo(None, 0)),
        (None, AcceleratorInfo(None, 0)),  # torch not importable
    ],
)
def test_accelerator_info(
    monkeypatch: pytest.MonkeyPatch, torch: types.ModuleType | None, expected: AcceleratorInfo
) -> None:
    monkeypatch.setitem(sys.modules, "torch", torch)  # type: ignore[arg-type]
    assert accelerator_info() == expected
