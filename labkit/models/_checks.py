"""Argument checks shared by the model families: a clear ValueError naming the argument."""

from __future__ import annotations

from collections.abc import Sequence


def check_num_blocks(num_blocks: Sequence[int], stages: int) -> None:
    """`num_blocks` must hold one positive int per stage."""
    if len(num_blocks) != stages or any(not isinstance(n, int) or n <= 0 for n in num_blocks):
        raise ValueError(
            f"num_blocks must be {stages} positive ints (blocks per stage), got {num_blocks!r}"
        )


def check_positive_ints(**values: int) -> None:
    """Every keyword argument must be a positive int."""
    for name, value in values.items():
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
