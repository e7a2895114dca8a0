"""The run tool: list, train and tabulate the runs of a chapter's plan.

    python -m tme_lib.runs CHAPTER [--only NAME ...] [--jobs N] [--dry-run] [--retrain]
                                   [--executor process|local|debug|slurm]

``CHAPTER`` is ``data``, ``tme9``, ``tme10``, ``aptamers``, ``beyond`` or ``all``. The tool
takes the chapter's plan (``plan()``: one :class:`~tme_lib.training.spec.Spec` per run),
keeps the runs whose name matches one of the ``--only`` patterns (exact names, or shell wildcards:
``--only 'attention_lstm-adam-*'``), skips those that already have a record
(``--retrain`` trains them again), and trains the rest, up to ``--jobs`` at a time; an
interrupted run resumes from its last checkpoint. A chapter's other steps (the aptamer
chapter's labelling and baselines) run first, and count as names for ``--only``. It then
writes the chapter's results tables from the records of its plan.

In the full profile, records and tables go to ``results/`` only from a clean working tree
(:mod:`tme_lib.training.records`); otherwise to a scratch folder in the cache.

Executors: ``process`` (default) runs side by side on this machine; ``local`` and ``debug`` are
submitit's local and in-process executors; ``slurm`` submits one job per run to a Slurm
cluster through submitit (``--partition``, ``--timeout-min``, ``--cpus``).
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import fnmatch
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

from . import config, interrupts
from .chapters import CHAPTERS, chapter
from .training import records
from .training.spec import Spec

EXECUTORS = ("process", "local", "debug", "slurm")


def matches(name: str, only: list[str]) -> bool:
    """Whether ``name`` is one of the patterns of ``--only`` (shell wildcards: ``*``, ``?``,
    ``[...]``); everything matches when there are none."""
    return not only or any(fnmatch.fnmatchcase(name, p) for p in only)


def selected(specs: list[Spec], only: list[str]) -> list[Spec]:
    """The specs whose name matches ``only`` (all of them without patterns)."""
    return [s for s in specs if matches(s.name, only)]


def table_dir() -> Path:
    """Where results tables go: ``results/`` in the full profile at a clean commit, else the
    matching folder of the cache (as records, see :func:`tme_lib.training.records.write_dir`)."""
    if not config.is_full():
        path = config.cache_dir() / "smoke-results"
    elif records.code_version()[1]:
        path = config.REPO_ROOT / "results"
    else:
        path = config.cache_dir() / "scratch-results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_one(chapter_name: str, spec_dict: dict, retrain: bool = False) -> dict:
    """Train (or load) one run in this process; returns a short summary. Top-level and given a
    plain dict, so that every executor can send it to a worker."""
    config.get_device(verbose=False)  # applies TME_THREADS and the CPU settings
    spec = Spec.from_dict(spec_dict)
    start = time.perf_counter()
    record = chapter(chapter_name).run(spec, progress=False, retrain=retrain)
    scores = {
        k: round(v, 4)
        for k, v in record.final.items()
        if k in ("val_acc", "test_acc", "val_loss", "test_mse", "test_r2")
    }
    return {"name": spec.name, "seconds": round(time.perf_counter() - start, 1), **scores}


def _executor(kind: str, jobs: int, args) -> futures.Executor:
    if kind == "process":
        return futures.ProcessPoolExecutor(
            jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=interrupts.worker_init,
            initargs=(os.getpid(),),
        )
    import submitit  # optional: only for the cluster and its local stand-ins

    folder = config.cache_dir() / "submitit"
    cluster = {"local": "local", "debug": "debug", "slurm": "slurm"}[kind]
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    params = dict(timeout_min=args.timeout_min, cpus_per_task=args.cpus)
    if kind == "slurm" and args.partition:
        params["slurm_partition"] = args.partition
    if kind == "slurm":
        params["slurm_array_parallelism"] = jobs
    executor.update_parameters(**params)
    return _SubmititPool(executor)


class _SubmititPool:
    """submitit's executor behind the ``submit`` / ``result`` interface of
    :mod:`concurrent.futures` (its jobs have ``result()`` too)."""

    def __init__(self, executor):
        self.executor = executor

    def submit(self, fn, *args):
        return self.executor.submit(fn, *args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def train_plan(
    chapter_name: str, todo: list[Spec], jobs: int, kind: str, args
) -> list[dict]:
    """Run ``todo`` with the executor ``kind``; a failed run is reported, the others go on."""
    done, failed = [], []
    if kind == "process" and jobs == 1:
        signal.signal(signal.SIGINT, interrupts.ask_to_stop)
        for k, spec in enumerate(todo, 1):
            print(f"[{k}/{len(todo)}] {spec.label} ...", flush=True)
            try:
                done.append(run_one(chapter_name, spec.to_dict(), args.retrain))
            except KeyboardInterrupt:
                raise Interrupted(chapter_name, [spec.name], todo[k:]) from None
            print(f"[{k}/{len(todo)}] {done[-1]}", flush=True)
        return done
    if kind != "process":
        return _train_with_submitit(chapter_name, todo, jobs, kind, args)
    pool = _executor(kind, jobs, args)
    jobs_of = {
        pool.submit(run_one, chapter_name, s.to_dict(), args.retrain): s for s in todo
    }
    with interrupts.Stopper(pool, list(jobs_of)) as stopper:
        for k, (job, spec) in enumerate(jobs_of.items(), 1):
            try:
                done.append(job.result())
                print(f"[{k}/{len(todo)}] {done[-1]}", flush=True)
            except BaseException as error:  # one failed run does not stop the others
                if stopper.stopping:
                    break
                if not isinstance(error, Exception):
                    raise
                failed.append(spec.name)
                print(f"[{k}/{len(todo)}] {spec.label} failed: {error}", flush=True)
        if stopper.stopping:
            pool.shutdown(wait=True, cancel_futures=True)  # the workers save, then exit
            finished = {d["name"] for d in done}
            stopped = [
                s.name
                for j, s in jobs_of.items()
                if j.running()
                or (j.done() and not j.cancelled() and s.name not in finished)
            ]
            cancelled = [s for j, s in jobs_of.items() if j.cancelled()]
            raise Interrupted(chapter_name, stopped, cancelled)
    pool.shutdown()
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed: {', '.join(failed)}")
    return done


def _train_with_submitit(chapter_name, todo, jobs, kind, args) -> list[dict]:
    """The runs of ``todo`` on submitit's executors (a cluster manages their interruption)."""
    done, failed = [], []
    with _executor(kind, jobs, args) as pool:
        jobs_of = {
            pool.submit(run_one, chapter_name, s.to_dict(), args.retrain): s for s in todo
        }
        for k, (job, spec) in enumerate(jobs_of.items(), 1):
            try:
                done.append(job.result())
                print(f"[{k}/{len(todo)}] {done[-1]}", flush=True)
            except Exception as error:  # one failed run does not stop the others
                failed.append(spec.name)
                print(f"[{k}/{len(todo)}] {spec.label} failed: {error}", flush=True)
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed: {', '.join(failed)}")
    return done


class Interrupted(SystemExit):
    """The tool was asked to stop: one line that says what was kept and how to resume."""

    def __init__(self, chapter_name: str, stopped: list[str], cancelled: list):
        where = config.cache_dir() / "checkpoints" / chapter_name
        super().__init__(
            f"Interrupted: {len(stopped)} run(s) stopped ({', '.join(stopped) or 'none'}), "
            f"their checkpoints kept in {where}; {len(cancelled)} queued run(s) not started. "
            f"Run the same command again to resume."
        )


def write_tables(module) -> list[Path]:
    """Write the chapter's results tables from the records of its plan, once every run of the
    plan has one: a table is never built from part of a plan."""
    if not hasattr(module, "write_tables"):
        return []
    plan = module.plan()
    missing = [s.name for s in plan if records.find_record(s) is None]
    if missing:
        print(
            f"Tables of {module.CHAPTER} not written: {len(missing)} of the {len(plan)} runs "
            f"of its plan have no record yet ({', '.join(missing[:3])}"
            + (", ..." if len(missing) > 3 else "")
            + ")."
        )
        return []
    out = []
    for name, frame in module.write_tables(records.existing_records(plan)).items():
        path = table_dir() / name
        frame.to_csv(path, index=False, float_format="%.5g")
        out.append(path)
        print(f"{len(frame)} rows in {path}")
    return out


def main_chapter(chapter_name: str, args) -> None:
    module = chapter(chapter_name)
    plan = module.plan()
    todo = selected(plan, args.only)
    steps = {
        n: f for n, f in getattr(module, "steps", dict)().items() if matches(n, args.only)
    }
    missing = [s for s in todo if args.retrain or records.find_record(s) is None]
    damaged = {
        s.name: problem
        for s in todo
        if s not in missing and (problem := records.record_problem(s))
    }
    print(
        f"{chapter_name} ({config.profile()} profile): {len(plan)} runs in the plan, "
        f"{len(todo)} selected, {len(missing)} to train"
        + (f", {len(damaged)} damaged" if damaged else "")
        + (f"; steps {', '.join(steps)}" if steps else "")
    )
    if args.dry_run:
        for s in todo:
            state = (
                "to train"
                if s in missing
                else "damaged"
                if s.name in damaged
                else "recorded"
            )
            print(f"  {s.name:45s} {s.key()}  {state}")
    if damaged:
        for problem in damaged.values():
            print(f"  damaged: {problem}")
        raise SystemExit(
            f"{len(damaged)} record(s) of {chapter_name} are damaged (above); retrain them "
            f"with: python -m tme_lib.runs {chapter_name} --retrain --only "
            + " ".join(damaged)
        )
    if args.dry_run:
        return
    for name, step in steps.items():
        print(f"== {name}", flush=True)
        step(records.write_dir(chapter_name))
    if missing:
        train_plan(chapter_name, missing, args.jobs, args.executor, args)
    write_tables(module)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tme_lib.runs", description=__doc__.splitlines()[0]
    )
    p.add_argument("chapter", choices=[*CHAPTERS, "all"])
    p.add_argument(
        "--only",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME",
        help="runs (or steps) with one of these names; wildcards * ? [] allowed",
    )
    p.add_argument(
        "--jobs", type=int, default=1, help="runs trained side by side (default 1)"
    )
    p.add_argument("--dry-run", action="store_true", help="list the runs and stop")
    p.add_argument(
        "--retrain", action="store_true", help="train even runs that have a record"
    )
    p.add_argument("--executor", choices=EXECUTORS, default="process")
    p.add_argument("--partition", help="Slurm partition (--executor slurm)")
    p.add_argument(
        "--timeout-min", type=int, default=120, help="per job (submitit executors)"
    )
    p.add_argument(
        "--cpus", type=int, default=1, help="CPUs per job (submitit executors)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.jobs < 1:
        parser().error("--jobs must be at least 1")
    if args.jobs > 1 and "TME_THREADS" not in os.environ:
        os.environ["TME_THREADS"] = str(max(1, (os.cpu_count() or 1) // args.jobs))
    config.get_device()
    # The run tool is how runs are made: it trains missing runs even where the library is
    # installed without the repository (its workers inherit the variable).
    before = os.environ.get("TME_TRAIN_MISSING")
    os.environ["TME_TRAIN_MISSING"] = "1"
    try:
        for name in CHAPTERS if args.chapter == "all" else [args.chapter]:
            main_chapter(name, args)
    finally:
        if before is None:
            os.environ.pop("TME_TRAIN_MISSING", None)
        else:
            os.environ["TME_TRAIN_MISSING"] = before
    return 0


if __name__ == "__main__":
    sys.exit(main())
