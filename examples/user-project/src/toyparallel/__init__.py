"""toyparallel: a tiny MLP and the 2D (data x tensor) parallel plan fakedist's example tests."""

from toyparallel.model import MLP, parallelize, train_step

__all__ = ["MLP", "parallelize", "train_step"]
