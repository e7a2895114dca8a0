"""Pretraining throughput: tokens per second, and the share of the machine's matrix-multiply
peak it uses.

    TME_PROFILE=full TME_THREADS=2 python benchmarks/bench_pretraining.py [--seconds 60] [--record]

It builds the chapter's masked language model with the sizes of the active profile's
pretraining spec, then, in the same process and with the same thread count, measures (1) the
peak: float32 matrix products of 1024 × 1024, in GFLOP/s, and (2) training steps of the
pretraining loop (masking, forward, loss on chosen positions, backward, AdamW, schedule) on real
batches of the chapter's text, bucketed by length as in the run, in real tokens per second and
padding share. The model's arithmetic per token is counted from its sizes (multiply-adds of its
linear maps, attention scores and weighted sums at the batch's length, and the vocabulary-wide
layer on the chosen 15 %), times 3 for forward and backward (``pretraining.flops_per_token``,
the count the chapter's routes share); the ratio to the peak is then the
efficiency. It ends with the time one epoch and the whole pretraining budget would take.

``--record`` writes the measurement to ``results/benchmarks/pretraining.json`` with the commit
(a clean one: like a run's record), the machine, the thread count and the date, which is what
the pretraining chapter quotes. It refuses on a busy machine (load average above 0.5): a
benchmark beside another job measures the other job too.
"""

from __future__ import annotations

import argparse
import time

import recorded
import torch

from tme_lib import config
from tme_lib.chapters import pretraining as chapter
from tme_lib.data.batching import BucketLoader
from tme_lib.data.pretraining import FIRST_WORD, MASK
from tme_lib.training.trainer import make_optimizer, make_scheduler


def matmul_peak(seconds: float = 3.0, n: int = 1024) -> float:
    """GFLOP/s of float32 ``n × n`` matrix products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start, k = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        a @ b
        k += 1
    return 2 * n**3 * k / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--record", action="store_true", help="write results/benchmarks/")
    args = parser.parse_args()
    commit = recorded.ready() if args.record else None
    config.get_device(verbose=False)
    spec = chapter.pretraining_spec()
    text = chapter.text_of(spec)
    model = chapter.build_model(spec)
    t = spec.training
    loader = BucketLoader(text.pretrain, t.batch_size, seed=spec.seed)
    optimizer = make_optimizer(t, model.parameters())
    scheduler = make_scheduler(t, optimizer, len(loader))
    peak = matmul_peak()
    from tme_lib.blocks.masked_lm import mask_tokens

    tokens = slots = steps = 0
    lengths = 0.0
    start = time.perf_counter()
    for index in loader.batch_indices(0):
        batch = loader.make_batch(index)
        inputs, labels = mask_tokens(
            batch.x, batch.mask, MASK, FIRST_WORD, len(text.vocab), t.mask_rate
        )
        loss = model.loss(inputs, batch.mask, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        scheduler.step()
        real = int(batch.mask.sum())
        tokens, slots, steps = tokens + real, slots + batch.mask.numel(), steps + 1
        lengths += real * batch.x.shape[1]
        if time.perf_counter() - start > args.seconds:
            break
    seconds = time.perf_counter() - start
    rate = tokens / seconds
    achieved = (
        rate * chapter.flops_per_token(spec.model, lengths / tokens, t.mask_rate) / 1e9
    )
    epoch = int(text.pretrain.lengths.sum()) + len(text.pretrain)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"threads {torch.get_num_threads()}, {n_params:,} parameters")
    print(f"matrix-multiply peak: {peak:.1f} GFLOP/s")
    print(
        f"pretraining: {steps} steps, {rate:,.0f} real tokens/s, padding {1 - tokens / slots:.1%}"
    )
    print(f"model arithmetic: {achieved:.1f} GFLOP/s = {achieved / peak:.1%} of the peak")
    print(
        f"one epoch ({epoch:,} tokens): {epoch / rate / 60:.1f} min; "
        f"{t.epochs} epochs: {t.epochs * epoch / rate / 3600:.2f} h"
    )
    if args.record:
        recorded.write(
            "pretraining",
            commit,
            seconds=round(seconds, 1),
            parameters=n_params,
            matmul_gflops=round(peak, 2),
            tokens_per_second=round(rate, 1),
            padding=round(1 - tokens / slots, 4),
            model_gflops=round(achieved, 2),
            efficiency=round(achieved / peak, 4),
            epoch_minutes=round(epoch / rate / 60, 2),
            budget_hours=round(t.epochs * epoch / rate / 3600, 3),
        )


if __name__ == "__main__":
    main()
