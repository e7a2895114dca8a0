"""Regenerate the aptamer chapter's results: baselines, training runs, ``results/aptamers.csv``.

    TME_PROFILE=full TME_THREADS=1 python tools/run_aptamers.py [steps...]

Steps (default: all, in this order): ``label`` (the ViennaRNA ΔG library, cached),
``baselines`` (mean, ridge, boosted trees on k-mer counts, several training-set sizes),
``planted`` (our transformer on the planted-answer simulation), ``transformer``, ``source``
(the source project's model), ``curve`` (our transformer on smaller training sets),
``ablation`` (our transformer with and without its base-pair bias), ``table``.
Training runs go through :func:`tme_lib.records.load_or_train`: a run whose record exists is
loaded, never retrained; an interrupted run resumes from its last epoch's checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("TME_THREADS", "1"))  # sklearn's threads

import pandas as pd  # noqa: E402

from tme_lib import config  # noqa: E402
from tme_lib.aptamers import runs  # noqa: E402
from tme_lib.aptamers.baselines import BASELINES, fit_baseline  # noqa: E402
from tme_lib.aptamers.data import energy_splits  # noqa: E402
from tme_lib.records import load_or_train, load_records  # noqa: E402

STEPS = ("label", "baselines", "planted", "transformer", "source", "curve", "ablation", "table")
COLUMNS = ["model", "target", "params", "n_train", "epochs", "seconds", "device", "test_mse",
           "test_r2", "pearson", "spearman"]


def baseline_path():
    """Baseline scores, one row per (model, n_train); CSV so it is never taken for a run record."""
    return config.results_dir(runs.CHAPTER) / "baselines.csv"


def run_baselines() -> None:
    """Fit every baseline on each size of :func:`runs.baseline_sizes` (the learning-curve sizes
    and the main training set); rows are appended to ``baselines.csv``, those there are kept."""
    path = baseline_path()
    done = pd.read_csv(path).to_dict("records") if path.exists() else []
    for n_train in runs.baseline_sizes():
        splits = energy_splits(n_train)
        for name in BASELINES:
            if any(r["model"] == name and r["n_train"] == n_train for r in done):
                continue
            row = fit_baseline(name, splits.train, splits.test)
            row["device"] = "cpu (scikit-learn, 1 thread)"
            print(row, flush=True)
            done.append(row)
            pd.DataFrame(done).to_csv(path, index=False)


def train(run) -> None:
    cfg, build, loaders = run()[:3]
    record = load_or_train(cfg, build, loaders)
    print(cfg.name, {k: round(v, 4) for k, v in record.final.items() if isinstance(v, float)})


def table() -> pd.DataFrame:
    """``results/aptamers.csv``: one row per run (records and baselines)."""
    rows = []
    for r in load_records(runs.CHAPTER):
        target = "planted" if r.config["data"]["source"] == "simulator" else "viennarna_dG"
        rows.append({**r.final, "model": r.name, "target": target, "params": r.n_params,
                     "n_train": r.config["data"]["n_train"],
                     "epochs": len(r.history), "seconds": r.seconds, "device": r.device})
    path = baseline_path()
    for b in pd.read_csv(path).to_dict("records") if path.exists() else []:
        rows.append({**b, "target": "viennarna_dG", "epochs": None})
    frame = pd.DataFrame(rows, columns=COLUMNS).sort_values(["target", "model", "n_train"])
    out = config.REPO_ROOT / "results" / "aptamers.csv" if config.is_full() else \
        config.cache_dir() / "smoke-runs" / "aptamers.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.round(4).to_csv(out, index=False)
    print(frame.round(4).to_string(index=False))
    return frame


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("steps", nargs="*", help=f"any of {', '.join(STEPS)} (default: all)")
    steps = parser.parse_args(argv).steps or STEPS
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown step(s) {unknown}; choose from {', '.join(STEPS)}")
    config.get_device()
    for step in steps:
        print(f"== {step} ({config.profile()} profile)", flush=True)
        if step == "label":
            energy_splits()
        elif step == "baselines":
            run_baselines()
        elif step == "planted":
            train(runs.planted_run)
        elif step == "transformer":
            train(runs.transformer_run)
        elif step == "source":
            train(runs.source_run)
        elif step == "curve":
            for n_train in runs.CURVE_SIZES[config.profile()]:
                train(lambda: runs.transformer_run(n_train=n_train))
        elif step == "ablation":
            for run in runs.ablation_runs():
                train(lambda run=run: run)
        elif step == "table":
            table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
