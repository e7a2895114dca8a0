"""Regenerate the runs of TME 10 (self-attention) and its results table.

    TME_PROFILE=full TME_DATA_DIR=<folder with aclImdb_v1.tar.gz> python tools/run_tme10.py

Trains every run of :func:`tme_lib.tme10.plan` and of the slope search
(:func:`tme_lib.tme10.slope_search`) that has no record yet (an interrupted run resumes from its
last epoch), then writes ``results/tme10.csv`` (one row per run of the plan, the columns of
TME 9's table) and prints the mean ± sd summary, each run's largest epoch-to-epoch rise of the
validation loss and the validation accuracy of each slope tried. ``--only PATTERN`` restricts to runs whose name contains a pattern;
``--table`` only rewrites the table. In the smoke profile the records and the table go to the
cache folder, never to ``results/``.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from tme_lib import config, tme9, tme10
from tme_lib.records import record_path, results_table


def table_path():
    folder = config.REPO_ROOT / "results" if config.is_full() else config.cache_dir() / "smoke-results"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "tme10.csv"


def main(only: list[str], table_only: bool) -> None:
    todo = [cfg for cfg in tme10.plan() + tme10.slope_search()
            if not only or any(p in cfg.name for p in only)]
    if not table_only:
        loaded = None  # data and vectors, loaded once (all runs share them)
        for k, cfg in enumerate(todo, 1):
            if record_path(cfg).exists():
                continue
            loaded = loaded or tme10.load_data(cfg)
            start = time.perf_counter()
            record = tme10.run(cfg, *loaded)
            print(f"[{k}/{len(todo)}] {cfg.name}: test accuracy {record.final['test_acc']:.4f}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    records = tme10.plan_records()
    table = results_table(records, tme9.RESULT_COLUMNS)
    table.to_csv(table_path(), index=False, float_format="%.5g")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(tme9.summary(table).to_string(index=False))
    for record in records:
        rise = tme10.largest_rise([e["val_loss"] for e in record.history])
        print(f"{record.name}: largest rise of the validation loss between epochs {rise:.4f}")
    for record in tme10.existing_records(tme10.slope_search()):
        print(f"{record.name}: validation accuracy {record.final['val_acc']:.4f} "
              f"(slope {record.config['model_kwargs']['distance_slope']:g})")
    print(f"{len(table)} runs in {table_path()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="run names containing one of these")
    parser.add_argument("--table", action="store_true", help="only rewrite the results table")
    args = parser.parse_args()
    config.get_device()  # prints the device and applies TME_THREADS
    main(args.only, args.table)
