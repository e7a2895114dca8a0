"""Data-layer benchmark: tokenising IMDB (cold and cached), padding waste, baseline throughput.

Run with the real data (full profile), e.g.::

    TME_PROFILE=full TME_DATA_DIR=<folder with aclImdb_v1.tar.gz> python benchmarks/bench_data.py

The cold measure tokenises into a temporary cache folder (the archive is extracted there too,
timed separately), so the user's cache is neither used nor changed by it.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager

import torch

from tme_lib import config
from tme_lib.data.batching import BucketLoader

BATCH, MAX_LEN = 64, 400


@contextmanager
def temporary_cache():
    previous = os.environ.get("TME_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="tme-bench-") as folder:
        os.environ["TME_CACHE_DIR"] = folder
        try:
            yield
        finally:
            if previous is None:
                del os.environ["TME_CACHE_DIR"]
            else:
                os.environ["TME_CACHE_DIR"] = previous


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def bench_tokenising() -> None:
    from tme_lib.data import imdb

    with temporary_cache():
        _, extract = timed(imdb.imdb_root)
        _, cold = timed(imdb.load_imdb)
        _, cached = timed(imdb.load_imdb)
    print(f"extract archive (once):            {extract:7.2f} s")
    print(f"first load, 50,000 reviews (cold): {cold:7.2f} s")
    print(f"cached load:                       {cached:7.2f} s")


def bench_padding(data) -> None:
    print(f"padding fraction per epoch, train split, batch {BATCH}:")
    for max_len in (None, MAX_LEN):
        for bucket in (False, True):
            fraction = BucketLoader(
                data.train, BATCH, bucket=bucket, max_len=max_len
            ).padding_fraction()
            print(f"  max_len={str(max_len):>4}  bucket={bucket!s:>5}: {fraction:6.1%}")


def bench_baseline(data, device: torch.device) -> None:
    from tme_lib.blocks.embedding import Baseline
    from tme_lib.data.vectors import load_vectors

    torch.manual_seed(0)
    model = Baseline(load_vectors(data.vocab)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    loader = BucketLoader(data.train, BATCH, max_len=MAX_LEN)
    start = time.perf_counter()
    for batch in loader:
        x, mask, y = batch.to(device)
        optimizer.zero_grad()
        loss_fn(model(x, mask)[0], y).backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(
        f"baseline, one epoch on {device}: {seconds:6.2f} s, "
        f"{len(data.train) / seconds:8.0f} reviews/s"
    )


def main() -> None:
    config.get_device()  # prints the device and applies TME_THREADS
    if not config.is_full():
        print(
            "smoke profile: numbers below are for the toy corpus (set TME_PROFILE=full for IMDB)"
        )
    else:
        bench_tokenising()
    from tme_lib.data.corpus import data_settings, load_corpus

    data = load_corpus(data_settings())
    bench_padding(data)
    devices = [torch.device("cpu")] + (
        [torch.device("cuda")] if torch.cuda.is_available() else []
    )
    for device in devices:
        bench_baseline(data, device)


if __name__ == "__main__":
    main()
