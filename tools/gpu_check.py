"""Device check: train every model of every chapter briefly on a device, beside the CPU.

    python tools/gpu_check.py [--device cuda] [--profile full] [--steps 50] [--notebooks]

For each distinct model of each chapter's plan (its first spec, bag-of-words fits left out) it
builds the data, the model and the loaders from the spec, exactly as a run does, then times
``--steps`` training steps (forward, backward, optimizer) on ``--device`` and, unless
``--no-cpu``, on the CPU: examples per second and peak memory. With ``--notebooks`` it also
executes the four notebooks in the smoke profile on the device. It writes
``results/gpu_check.csv`` (or ``--out``): device name, torch version, chapter, model, examples
per second on the device and on the CPU, peak memory. Nothing is recorded as a run: the check
measures speed, not accuracy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tme_lib import config  # noqa: E402
from tme_lib.blocks.masked_lm import mask_tokens  # noqa: E402
from tme_lib.chapters import CHAPTERS, chapter  # noqa: E402
from tme_lib.chapters.pretraining import PRETRAINING_TASKS  # noqa: E402
from tme_lib.data.batching import BucketLoader  # noqa: E402
from tme_lib.data.pretraining import FIRST_WORD, MASK  # noqa: E402
from tme_lib.training import text_runs  # noqa: E402
from tme_lib.training.trainer import loss_fn, make_optimizer  # noqa: E402

COLUMNS = [
    "device",
    "torch",
    "chapter",
    "model",
    "spec",
    "examples_per_s",
    "cpu_examples_per_s",
    "peak_mib",
    "steps",
]


def one_of_each_model(name: str) -> list:
    """The first spec of each model of chapter ``name``'s plan (no scikit-learn fits); for the
    pretraining chapter, its masked language model, the replaced-token detector of its routes
    and its classifier (from scratch: no pretraining record is needed to time it)."""
    module, seen, out = chapter(name), set(), []
    if name == "pretraining":
        return [
            module.pretraining_spec(),
            module.route_spec("rtd"),
            module.finetune_spec(0, None),
        ]
    for spec in module.plan():
        if (
            spec.model_name in getattr(module, "BAG_OF_WORDS", {})
            or spec.model_name in seen
        ):
            continue
        seen.add(spec.model_name)
        out.append(spec)
    return out


def build(name: str, spec):
    """Model and training loader of ``spec``, as the chapter's run builds them."""
    module = chapter(name)
    if name == "aptamers":
        splits = module.splits_of(spec.data)
        t = spec.training
        return module.build_model(spec, splits), splits.loaders(
            t.batch_size, spec.seed
        ).train
    if name == "pretraining":
        text, t = module.text_of(spec), spec.training
        split = text.pretrain if t.task in module.PRETRAINING_TASKS else text.corpus.train
        loader = BucketLoader(split, t.batch_size, seed=spec.seed)
        return module.build_model(spec), loader
    corpus, vectors = text_runs.text_data(spec)
    model = text_runs.build_text_model(spec, module.MODELS, vectors)
    return model, text_runs.text_loaders(spec, corpus).train


def time_steps(
    spec, model, loader, device: torch.device, steps: int
) -> tuple[float, float]:
    """Examples per second over ``steps`` training steps (after one warm-up step) and the peak
    memory added (MiB; CUDA only, else NaN)."""
    config.set_seed(spec.seed)
    model = model.to(device).train()
    optimizer = make_optimizer(spec.training, model.parameters())
    batches = iter(loader)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    n, start = 0, None
    for step in range(steps + 1):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        batch = batch.to(device)
        optimizer.zero_grad(set_to_none=True)
        autocast = device.type == "cuda" and spec.chapter == "pretraining"  # as it trains
        with torch.autocast(device.type, torch.bfloat16, enabled=autocast):
            if spec.training.task in PRETRAINING_TASKS:  # the pretraining loop's step
                inputs, labels = mask_tokens(
                    batch.x.cpu(),
                    batch.mask.cpu(),
                    MASK,
                    FIRST_WORD,
                    spec.model["vocab_size"],
                )
                loss = model.loss(inputs.to(device), batch.mask, labels.to(device))
            else:
                output, _ = model(batch.x, batch.mask)
                loss = loss_fn(output, batch.y, spec.training.task)
        loss.backward()
        optimizer.step()
        if step == 0:  # warm-up: kernels chosen, memory allocated
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        else:
            n += len(batch.y)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = float("nan")
    return n / (time.perf_counter() - start), peak


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"


def run_notebooks(device: str) -> list[str]:
    """Execute the notebooks in the smoke profile on ``device``; returns the failures."""
    failed = []
    env = {**os.environ, "TME_PROFILE": "smoke", "TME_DEVICE": device}
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "jupyter",
                "nbconvert",
                "--to",
                "notebook",
                "--execute",
                "--stdout",
                str(path),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        print(
            f"{path.name} on {device}: {'ok' if done.returncode == 0 else 'FAILED'}",
            flush=True,
        )
        if done.returncode:
            failed.append(path.name)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--profile", choices=("smoke", "full"), default="full")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--chapters", nargs="+", default=list(CHAPTERS))
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU comparison")
    parser.add_argument("--notebooks", action="store_true", help="also run the notebooks")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "gpu_check.csv")
    args = parser.parse_args(argv)
    os.environ["TME_PROFILE"] = args.profile
    device = torch.device(args.device)
    config.get_device(verbose=False)  # threads and CPU settings
    rows = []
    for name in args.chapters:
        for spec in one_of_each_model(name):
            model, loader = build(name, spec)
            speed, peak = time_steps(spec, model, loader, device, args.steps)
            cpu = float("nan")
            if not args.no_cpu and device.type != "cpu":
                cpu, _ = time_steps(spec, model, loader, torch.device("cpu"), args.steps)
            elif device.type == "cpu":
                cpu = speed
            rows.append(
                {
                    "device": device_name(device),
                    "torch": torch.__version__,
                    "chapter": name,
                    "model": spec.model_name,
                    "spec": spec.key(),
                    "examples_per_s": round(speed, 1),
                    "cpu_examples_per_s": round(cpu, 1),
                    "peak_mib": round(peak, 1),
                    "steps": args.steps,
                }
            )
            print(
                f"{name:9s} {spec.model_name:28s} {speed:10.1f}/s on {device.type}"
                f"  {cpu:10.1f}/s on cpu",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(args.out, index=False)
    print(f"{len(rows)} models in {args.out}")
    failed = run_notebooks(args.device) if args.notebooks else []
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
