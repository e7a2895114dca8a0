"""Padded batches with masks, grouped by length so that little compute goes to padding.

Taught in "Data and training loop", sections "Padded batches and their mask" and "Bucketing".
A batch of reviews of lengths ``L_1..L_B`` is padded to ``T = max L_i``; its padding fraction
is ``1 - sum L_i / (B T)``.
Random batches of IMDB reviews (lengths from a few tokens to over a thousand) waste about half
of the slots; batches of reviews of similar length waste a few percent.

Bucketing, per epoch ``e`` (random generator seeded with ``seed + e``, so every run sees the
same batches): shuffle the reviews, cut the shuffled list into chunks of ``batch_size *
chunk_batches`` reviews (the spec's ``training.chunk_batches``), sort each chunk by length, cut
it into batches, and shuffle the order of all batches. Batches differ from epoch to epoch, yet
each holds reviews of nearly equal length. Without ``shuffle`` the reviews are sorted by length
once (bucketed) or kept in their order (not bucketed): see :meth:`BucketLoader.batch_indices`
for the order.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import torch

from .text import Corpus, TokenSplit

CHUNK_BATCHES = 100  # the default of chunk_batches; a run passes its spec's value


class Batch(NamedTuple):
    """``x`` LongTensor[B, T] ids (0 = padding), ``mask`` BoolTensor[B, T] True on real tokens,
    ``y`` FloatTensor[B] targets."""

    x: torch.Tensor
    mask: torch.Tensor
    y: torch.Tensor

    def to(self, device) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in self))


def _batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class BucketLoader:
    """Iterable of :class:`Batch` over a :class:`~tme_lib.data.imdb.TokenSplit`; ``len()`` is the
    number of batches. Each ``iter()`` starts the next epoch (see :meth:`set_epoch`)."""

    def __init__(
        self,
        split: TokenSplit,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        bucket: bool = True,
        max_len: int | None = None,
        chunk_batches: int = CHUNK_BATCHES,
    ):
        self.split = split if max_len is None else split.truncated(max_len)
        self.chunk_batches = chunk_batches
        self.batch_size, self.shuffle, self.seed, self.bucket = (
            batch_size,
            shuffle,
            seed,
            bucket,
        )
        self.lengths = self.split.lengths
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.split) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next ``iter()`` yields (then it counts on from there)."""
        self.epoch = epoch

    def batch_indices(self, epoch: int = 0) -> list[np.ndarray]:
        """Review indices of each batch of ``epoch``, in the order they are yielded."""
        n = len(self.split)
        if not self.shuffle:
            order = (
                np.argsort(self.lengths, kind="stable") if self.bucket else np.arange(n)
            )
            return _batches(order, self.batch_size)
        rng = np.random.default_rng(self.seed + epoch)
        order = rng.permutation(n)
        if not self.bucket:
            return _batches(order, self.batch_size)
        chunk = self.batch_size * self.chunk_batches
        batches = []
        for start in range(0, n, chunk):
            part = order[start : start + chunk]
            batches += _batches(
                part[np.argsort(self.lengths[part], kind="stable")], self.batch_size
            )
        return [batches[i] for i in rng.permutation(len(batches))]

    def make_batch(self, index: np.ndarray) -> Batch:
        """Pad the reviews ``index`` to the longest of them with numpy indexing (no loop)."""
        lengths = self.lengths[index]
        positions = np.arange(lengths.max())
        mask = positions[None, :] < lengths[:, None]
        # padded slots read position 0 of the flat array, then are zeroed through the mask
        flat = np.where(mask, self.split.offsets[index][:, None] + positions[None, :], 0)
        x = np.where(mask, self.split.ids[flat], 0)
        return Batch(
            torch.from_numpy(x.astype(np.int64)),
            torch.from_numpy(mask),
            torch.from_numpy(self.split.labels[index].astype(np.float32)),
        )

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        for index in self.batch_indices(epoch):
            yield self.make_batch(index)

    def padding_fraction(self, epoch: int = 0) -> float:
        """Padded slots / all slots over the batches of one epoch."""
        slots = real = 0
        for index in self.batch_indices(epoch):
            lengths = self.lengths[index]
            slots += len(index) * int(lengths.max())
            real += int(lengths.sum())
        return 1.0 - real / slots if slots else 0.0


VAL_ORDERS = ("length", "shuffled")


def make_loaders(
    data: Corpus,
    batch_size: int,
    seed: int = 0,
    eval_batch_size: int = 256,
    max_len: int | None = None,
    val_order: str = "length",
    chunk_batches: int = CHUNK_BATCHES,
) -> SimpleNamespace:
    """Loaders ``.train`` (bucketed, shuffled from ``seed``), ``.val`` and ``.test``.

    Test is always in length order (bucketed: evaluation needs no shuffling, and batches of
    equal lengths go faster). Validation is in length order too, or with
    ``val_order="shuffled"`` in a random order drawn from ``seed`` (not bucketed): the trainer's
    entropy histograms keep the first reviews of each pass, which in length order would be the
    shortest ones."""
    if val_order not in VAL_ORDERS:
        raise ValueError(f"val_order={val_order!r}: use one of {', '.join(VAL_ORDERS)}.")
    shuffled = val_order == "shuffled"
    return SimpleNamespace(
        train=BucketLoader(
            data.train,
            batch_size,
            shuffle=True,
            seed=seed,
            max_len=max_len,
            chunk_batches=chunk_batches,
        ),
        val=BucketLoader(
            data.val,
            eval_batch_size,
            shuffle=shuffled,
            bucket=not shuffled,
            seed=seed,
            max_len=max_len,
        ),
        test=BucketLoader(data.test, eval_batch_size, shuffle=False, max_len=max_len),
    )


class TensorLoader:
    """Batches of fixed-length sequences (``x`` [N, T], targets ``y`` [N]) with an all-True
    mask, shuffled per epoch from ``seed + epoch`` like :class:`BucketLoader`."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
    ):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        self.x, self.y = torch.as_tensor(x).long(), torch.as_tensor(y).float()
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batch_indices(self, epoch: int = 0) -> list[np.ndarray]:
        n = len(self.x)
        order = (
            np.random.default_rng(self.seed + epoch).permutation(n)
            if self.shuffle
            else np.arange(n)
        )
        return _batches(order, self.batch_size)

    def __iter__(self):
        epoch, self.epoch = self.epoch, self.epoch + 1
        for index in self.batch_indices(epoch):
            index = torch.from_numpy(index)
            x = self.x[index]
            yield Batch(x, torch.ones_like(x, dtype=torch.bool), self.y[index])

    def padding_fraction(self, epoch: int = 0) -> float:
        return 0.0
