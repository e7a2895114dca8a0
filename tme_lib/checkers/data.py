"""Checkers of the chapter "Data and training loop"."""

from __future__ import annotations

import numpy as np
import torch

from tme_lib.checkers import ExerciseError, call_student, checker, passed
from tme_lib.data.batching import BucketLoader
from tme_lib.data.text import pack

_CASES = (
    [[5, 6, 7], [8], [9, 10, 11, 12, 13]],
    [[4, 4], [4, 4]],  # no padding needed
    [[1], [7, 1, 1]],  # OOV ids (1) are real tokens, not padding
)


def reference_pad_batch(sequences) -> tuple[torch.Tensor, torch.Tensor]:
    """The library's padding (:meth:`BucketLoader.make_batch`), for comparison."""
    split = pack([np.asarray(s) for s in sequences], np.zeros(len(sequences)))
    batch = BucketLoader(
        split, batch_size=len(sequences), shuffle=False, bucket=False
    ).make_batch(np.arange(len(sequences)))
    return batch.x, batch.mask


@checker
def check_pad_batch(fn) -> None:
    """``fn(sequences) -> (x, mask)``: right padding with id 0, mask True on real tokens."""
    for case in _CASES:
        sequences = [torch.tensor(s) for s in case]
        out = call_student(fn, sequences)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ExerciseError("pad_batch must return a pair (x, mask).")
        x, mask = out
        want_x, want_mask = reference_pad_batch(case)
        if not isinstance(x, torch.Tensor) or x.dtype != torch.long:
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ExerciseError(
                f"x must be a tensor of integer token ids, torch.long (got {got}): "
                "nn.Embedding looks ids up and refuses floats. Create it with "
                "torch.zeros(..., dtype=torch.long)."
            )
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise ExerciseError("mask must be a torch.bool tensor (True on real tokens).")
        if tuple(x.shape) != tuple(want_x.shape):
            raise ExerciseError(
                f"for lengths {[len(s) for s in case]}, x should have shape "
                f"{tuple(want_x.shape)} (batch, longest sequence); got {tuple(x.shape)}."
            )
        if torch.equal(mask, ~want_mask):
            raise ExerciseError(
                "the mask is inverted: it must be True on real tokens, False on padding."
            )
        lengths = want_mask.sum(1)
        if (
            mask.shape == want_mask.shape
            and torch.equal(mask.sum(1), (lengths + 1).clamp(max=mask.shape[1]))
            and not torch.equal(mask, want_mask)
        ):
            raise ExerciseError(
                "the mask is off by one: it marks one position too many in each row. "
                "Position i is real when i < length (not i <= length)."
            )
        if not torch.equal(mask, want_mask):
            raise ExerciseError(
                f"mask differs for lengths {[len(s) for s in case]}: tokens go first "
                "(right padding) and OOV tokens (id 1) are real tokens."
            )
        if not torch.equal(x.long(), want_x):
            raise ExerciseError(
                "x differs: keep each sequence's ids in order at the start of its row, "
                "and fill the rest with the padding id 0."
            )
    passed("pad_batch")
