"""Regenerate the runs of TME 9 (global attention) and its results table.

    TME_PROFILE=full TME_DATA_DIR=<folder with aclImdb_v1.tar.gz> python tools/run_tme9.py

Trains every run of :func:`tme_lib.tme9.plan` that has no record yet (an interrupted run resumes
from its last epoch), then writes ``results/tme9.csv``: one row per run, with the mean ± sd
summary printed. ``--only PATTERN`` restricts to runs whose name contains a pattern;
``--table`` only rewrites the table. In the smoke profile the records and the table go to the
cache folder, never to ``results/``.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from tme_lib import config, tme9
from tme_lib.records import record_path, results_table


def table_path():
    folder = config.REPO_ROOT / "results" if config.is_full() else config.cache_dir() / "smoke-results"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "tme9.csv"


def main(only: list[str], table_only: bool) -> None:
    todo = [cfg for cfg in tme9.plan() if not only or any(p in cfg.name for p in only)]
    if not table_only:
        loaded = {}  # data and vectors per corpus, loaded once
        for k, cfg in enumerate(todo, 1):
            if record_path(cfg).exists():
                continue
            corpus = cfg.data["corpus"]
            if corpus not in loaded:
                loaded[corpus] = tme9.load_data(cfg)
            start = time.perf_counter()
            record = tme9.run(cfg, *loaded[corpus])
            print(f"[{k}/{len(todo)}] {cfg.name}: test accuracy {record.final['test_acc']:.4f}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    table = results_table(tme9.plan_records(), tme9.RESULT_COLUMNS)
    table.to_csv(table_path(), index=False, float_format="%.5g")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(tme9.summary(table).to_string(index=False))
    print(f"{len(table)} runs in {table_path()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", action="extend", default=[], metavar="PATTERN",
                        help="run names containing one of these (e.g. --only=sgd-s0 --only=-s1)")
    parser.add_argument("--table", action="store_true", help="only rewrite the results table")
    args = parser.parse_args()
    config.get_device()  # prints the device and applies TME_THREADS
    main(args.only, args.table)
