"""Padded batches: masks, coverage, determinism, padding waste of bucketing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tme_lib.data.batching import Batch, BucketLoader, TensorLoader, make_loaders
from tme_lib.data.text import pack
from tme_lib.data.toy import load_toy


def _split(lengths, seed=0):
    """Reviews with distinct non-zero ids (review i, token j -> 1 + i * 10_000 + j)."""
    arrays = [1 + i * 10_000 + np.arange(n) for i, n in enumerate(lengths)]
    labels = np.random.default_rng(seed).integers(0, 2, len(lengths))
    return pack(arrays, labels, dtype=np.int64)


def _imdb_like_lengths(n=5000, seed=0):
    """Log-normal lengths like IMDB reviews (median about 200 tokens, a long tail)."""
    return np.clip(
        np.random.default_rng(seed).lognormal(5.3, 0.65, n).astype(int), 5, 2500
    )


@pytest.mark.parametrize("bucket", [True, False])
@pytest.mark.parametrize("shuffle", [True, False])
def test_masks_are_true_exactly_on_real_tokens_and_every_review_comes_once(
    bucket, shuffle
):
    split = _split([3, 1, 7, 2, 5, 4, 6, 1, 2])
    loader = BucketLoader(split, batch_size=4, shuffle=shuffle, bucket=bucket)
    seen = []
    for batch in loader:
        assert batch.x.dtype == torch.long and batch.mask.dtype == torch.bool
        assert batch.y.dtype == torch.float32
        assert (batch.x[~batch.mask] == 0).all() and (batch.x[batch.mask] > 0).all()
        for row, keep, y in zip(batch.x, batch.mask, batch.y):
            review = int(row[0]) // 10_000
            ids, label = split[review]
            assert row[keep].tolist() == ids.tolist() and float(y) == label
            # real tokens come first
            assert keep.tolist() == sorted(keep.tolist(), reverse=True)
            seen.append(review)
    assert sorted(seen) == list(range(len(split)))
    assert len(loader) == 3


def test_epochs_are_deterministic_from_seed_and_differ_between_epochs():
    split = _split(_imdb_like_lengths(2000))
    a, b = BucketLoader(split, 64, seed=5), BucketLoader(split, 64, seed=5)
    first_a, first_b = [x.x for x in a], [x.x for x in b]
    assert all(torch.equal(u, v) for u, v in zip(first_a, first_b))
    second_a = [x.x for x in a]  # next epoch
    assert not all(
        u.shape == v.shape and torch.equal(u, v) for u, v in zip(first_a, second_a)
    )
    b.set_epoch(1)
    assert all(torch.equal(u, v.x) for u, v in zip(second_a, b))


def test_bucketing_keeps_padding_under_ten_percent():
    split = _split(_imdb_like_lengths())
    bucketed = BucketLoader(split, 64).padding_fraction()
    random = BucketLoader(split, 64, bucket=False).padding_fraction()
    assert bucketed <= 0.1 < random
    assert BucketLoader(split, 64, max_len=400).padding_fraction() <= bucketed


def test_padding_fraction_counts_padded_slots():
    loader = BucketLoader(_split([1, 3]), batch_size=2, shuffle=False, bucket=False)
    assert loader.padding_fraction() == pytest.approx(2 / 6)


def test_max_len_truncates_batches():
    loader = BucketLoader(_split([10, 2, 30]), batch_size=3, max_len=8)
    batch = next(iter(loader))
    assert batch.x.shape == (3, 8) and batch.mask.sum().item() == 8 + 2 + 8


def test_tensor_loader_yields_full_masks_and_all_rows():
    x = torch.randint(1, 5, (10, 30))
    y = torch.arange(10, dtype=torch.float64)
    loader = TensorLoader(x, y, batch_size=4, seed=1)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert all(b.mask.all() and b.mask.shape == b.x.shape for b in batches)
    assert sorted(torch.cat([b.y for b in batches]).tolist()) == y.tolist()
    assert batches[0].y.dtype == torch.float32
    for b in batches:  # rows stay paired with their targets
        assert all(torch.equal(x[int(t)], row) for row, t in zip(b.x, b.y))


def test_batch_to_moves_every_field():
    batch = Batch(
        torch.ones(2, 3, dtype=torch.long),
        torch.ones(2, 3, dtype=torch.bool),
        torch.zeros(2),
    )
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and moved.x.device.type == "cpu"
    x, mask, y = moved  # unpacks as a triple
    assert x.shape == mask.shape


def test_make_loaders_shuffles_train_only():
    loaders = make_loaders(load_toy(), batch_size=32, seed=4, max_len=20)
    assert (
        loaders.train.shuffle
        and loaders.train.seed == 4
        and loaders.train.batch_size == 32
    )
    assert not loaders.val.shuffle and not loaders.test.shuffle
    assert max(int(b.x.shape[1]) for b in loaders.test) == 20


@pytest.mark.real_data
def test_real_imdb_bucketing_wastes_under_ten_percent(real_data):
    from tme_lib.data.imdb import load_imdb

    train = load_imdb().train
    bucketed = BucketLoader(train, 64).padding_fraction()
    assert bucketed <= 0.1 < BucketLoader(train, 64, bucket=False).padding_fraction()
