"""Training throughput and peak memory of the TME 10 self-attention classifier.

    python benchmarks/bench_tme10.py [--steps 3] [--d-model 32] [--heads 1] [--layers 3] [--record]
                                     [--distance-slope 0.25] [--keep-denormals]

For a few batch sizes (at ``--length`` tokens) and a few lengths (at ``--batch``) it times
training steps (forward, backward, Adam) with PyTorch's fused attention kernel; then, at the
same batch size and length, training steps with the course's explicit softmax (which keeps
the weights) and the evaluation pass that the trainer makes with the weights on (no gradient) to
record attention entropies — the entropy itself, computed by the trainer, is not timed.
Reviews are random and fill every position, the worst case of a length bucket. It prints
reviews per second and the peak memory added by the pass. Each configuration runs in its own
process, so one peak does not hide the next: on a
CPU the peak is the growth of the process's peak resident memory (Linux ``ru_maxrss``), on a
GPU ``torch.cuda.max_memory_allocated``. Set ``TME_THREADS`` to the thread count training
will use. The batch size of the full TME 10 runs was chosen with this script.

``--distance-slope`` adds the distance bias of ``self_attention_distance``; ``--keep-denormals``
turns off the flushing of denormal floats to zero that ``config.get_device`` applies, to see
what it saves (with the distance bias, many attention weights fall in the denormal range).

``--record`` measures what TME 10 quotes instead, on an idle machine at a clean commit: training
steps at ``--batch`` × ``--length`` of the model with the distance bias (slope 1/4), denormals
flushed and kept, and of the model without it, into ``results/benchmarks/tme10.json``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import recorded
import torch

from tme_lib import config
from tme_lib.chapters.tme10 import SelfAttentionClassifier

VOCAB, DIM = 2000, 50


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def measure(batch_size: int, length: int, mode: str, args) -> dict:
    """Reviews per second and peak added memory (MiB) of ``args.steps`` steps of ``mode``."""
    device = config.get_device(verbose=False)
    if args.keep_denormals:
        torch.set_flush_denormal(False)
    config.set_seed(0)
    model = SelfAttentionClassifier(
        torch.randn(VOCAB, DIM),
        d_model=args.d_model,
        n_layers=args.layers,
        n_heads=args.heads,
        ffn_mult=args.ffn_mult,
        distance_slope=args.distance_slope,
    ).to(device)
    model.need_weights = mode != "train-fused"
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randint(2, VOCAB, (batch_size, length), device=device)
    mask = torch.ones(batch_size, length, dtype=torch.bool, device=device)
    y = torch.randint(0, 2, (batch_size,), device=device).float()

    def step():
        if mode == "eval-weights":
            with torch.no_grad():
                model.eval()(x, mask)
            return
        optimizer.zero_grad(set_to_none=True)
        logit, _ = model(x, mask)
        torch.nn.functional.binary_cross_entropy_with_logits(logit, y).backward()
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _peak_rss_mib()
    step()  # warm-up (allocator, Adam state): untimed, but its memory peak counts
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = _peak_rss_mib() - base
    seconds = time.perf_counter() - t0
    return {
        "batch": batch_size,
        "tokens": length,
        "mode": mode,
        "reviews_per_s": args.steps * batch_size / seconds,
        "peak_mib": peak,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def _child(queue, *job):
    queue.put(measure(*job))


def run(job) -> dict:
    """``measure(*job)`` in a fresh process, so its memory peak is its own."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, *job))
    proc.start()
    result = queue.get()
    proc.join()
    return result


RECORDED = {  # what TME 10 quotes: (distance slope, keep denormals)
    "bias_flushed": (0.25, False),
    "bias_kept": (0.25, True),
    "no_bias": (0.0, False),
}


def record(args) -> None:
    commit = recorded.ready()
    rates, threads = {}, set()
    for name, (slope, keep) in RECORDED.items():
        setting = argparse.Namespace(
            **{**vars(args), "distance_slope": slope, "keep_denormals": keep}
        )
        r = run((args.batch, args.length, "train-fused", setting))
        rates[name] = round(r["reviews_per_s"], 1)
        threads.add(r["threads"])  # measured in a child process, with TME_THREADS
        print(f"{name}: {r['reviews_per_s']:.1f} reviews/s", flush=True)
    recorded.write(
        "tme10",
        commit,
        threads=threads.pop(),
        batch=args.batch,
        tokens=args.length,
        steps=args.steps,
        d_model=args.d_model,
        layers=args.layers,
        heads=args.heads,
        reviews_per_second=rates,
    )


def main(args) -> None:
    if args.record:
        return record(args)
    jobs = [(b, args.length, "train-fused") for b in args.batch_sizes]
    jobs += [
        (args.batch, t, "train-fused")
        for t in args.lengths
        if t != args.length or args.batch not in args.batch_sizes
    ]
    jobs += [
        (args.batch, args.length, mode) for mode in ("train-explicit", "eval-weights")
    ]
    print(
        f"model: d_model={args.d_model}, {args.layers} layers, {args.heads} heads, MLP "
        f"{args.ffn_mult}·d, distance slope {args.distance_slope:g}; denormals "
        f"{'kept' if args.keep_denormals else 'flushed'}; "
        f"{args.steps} timed steps per configuration"
    )
    print(
        f"{'batch':>5} {'tokens':>6} {'mode':>14} {'reviews/s':>10} {'peak MiB':>9}  device"
    )
    for job in jobs:
        r = run((*job, args))
        print(
            f"{r['batch']:>5} {r['tokens']:>6} {r['mode']:>14} {r['reviews_per_s']:>10.1f} "
            f"{r['peak_mib']:>9.0f}  {r['device']} ({r['threads']} threads)",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--ffn-mult", type=int, default=4)
    parser.add_argument("--distance-slope", type=float, default=0.0)
    parser.add_argument("--keep-denormals", action="store_true")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument(
        "--length", type=int, default=400, help="length of the batch-size sweep"
    )
    parser.add_argument(
        "--batch", type=int, default=32, help="batch size of the length sweep"
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 400])
    parser.add_argument("--record", action="store_true", help="write results/benchmarks/")
    main(parser.parse_args())
