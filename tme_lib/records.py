"""Run records and load-or-train.

A run record is ``results/runs/<chapter>/<name>-<hash>.json`` (smoke-profile runs go to the
cache instead, see :func:`tme_lib.config.results_dir`), with the learned weights beside it in
``<name>-<hash>.pt``. The hash is :meth:`TrainConfig.hash`: asking for a run whose config
changed trains anew and never reuses the old record.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from tme_lib import config
from tme_lib.train import TrainConfig, train


@dataclass
class RunRecord:
    """What a run leaves behind; ``model`` is set when the weights were loaded or trained."""

    config: dict
    config_hash: str
    profile: str
    code_version: str
    device: str
    torch_version: str
    started_at: str
    seconds: float
    n_params: int
    history: list = field(default_factory=list)
    final: dict = field(default_factory=dict)
    model: torch.nn.Module | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.config["name"]

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "model"}


def code_version() -> str:
    """``git describe`` of the working tree (``-dirty`` when it has uncommitted changes)."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=config.REPO_ROOT,
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import version
    return f"tme_lib-{version('tme_lib')}"


def record_path(cfg: TrainConfig) -> Path:
    return config.results_dir(cfg.chapter) / f"{cfg.name}-{cfg.hash()}.json"


def read_record(path: Path) -> RunRecord:
    return RunRecord(**json.loads(Path(path).read_text()))


def device_kind(description: str) -> str:
    """The kind of device of a record's description: ``"cpu (x86_64, 1 threads)"`` -> ``"cpu"``,
    ``"cuda (NVIDIA H100)"`` -> ``"cuda"``."""
    return str(description).split(" (")[0]


def load_or_train(cfg: TrainConfig, build_model: Callable[[], torch.nn.Module], loaders,
                  device=None, progress: bool = True, retrain: bool = False) -> RunRecord:
    """Load the record (and weights) of ``cfg`` if it exists, else train and save it.

    ``build_model`` is called after seeding with ``cfg.seed``, so initial weights are
    reproducible. ``loaders`` needs ``.train``, ``.val`` and ``.test``; it may be a callable
    returning them, so that a loaded run never builds them.
    """
    path = record_path(cfg)
    weights = path.with_suffix(".pt")
    device = device or config.get_device(verbose=False)
    if path.exists() and not retrain:
        record = read_record(path)
        config.set_seed(cfg.seed)
        model = build_model()
        if weights.exists():
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        record.model = model.to(device)
        print(f"Loaded {cfg.chapter}/{cfg.name} ({record.seconds:.0f} s on "
              f"{device_kind(record.device)}, code {record.code_version})")
        return record

    stale = sorted(p.name for p in path.parent.glob(f"{cfg.name}-*.json") if p != path)
    if stale:
        print(f"Config of {cfg.chapter}/{cfg.name} changed (new hash {cfg.hash()}): training anew; "
              f"older records left untouched: {', '.join(stale)}")
    if callable(loaders) and not hasattr(loaders, "train"):
        loaders = loaders()
    config.set_seed(cfg.seed)
    model = build_model()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out = train(cfg, model, loaders, device=device, progress=progress)
    device_name = out["device"]
    if device_name.startswith("cuda"):
        device_name = f"cuda ({torch.cuda.get_device_name(0)})"
    elif device_name == "cpu":
        device_name = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    record = RunRecord(
        config=cfg.to_dict(), config_hash=cfg.hash(), profile=config.profile(),
        code_version=code_version(), device=device_name, torch_version=torch.__version__,
        started_at=started, seconds=round(out["seconds"], 2),
        n_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        history=out["history"], final=out["final"], model=model,
    )
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=1, default=float))
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights)
    tmp.replace(path)  # the record appears last: a record on disk always has its weights
    out["checkpoint"].unlink(missing_ok=True)
    return record


def load_records(chapter: str) -> list[RunRecord]:
    """Every record of a chapter in the active profile, oldest first."""
    paths = sorted(config.results_dir(chapter).glob("*.json"))
    return sorted((read_record(p) for p in paths), key=lambda r: r.started_at)


RESULT_COLUMNS = ["model", "optimizer", "seed", "epochs", "train_loss", "train_acc", "val_acc",
                  "test_loss", "test_acc", "mean_entropy", "seconds", "device"]


def results_table(records: list[RunRecord], columns: list[str] = RESULT_COLUMNS) -> pd.DataFrame:
    """One row per run: config fields, final metrics and cost, in ``columns`` order.

    ``model`` is the config's model name, ``epochs`` the epochs actually trained; a column that a record
    lacks is left empty.
    """
    rows = []
    for r in records:
        row = {**r.config, **r.final, "model": r.config.get("model") or r.name, "epochs": len(r.history),
               "seconds": r.seconds, "device": r.device, "params": r.n_params,
               "code_version": r.code_version}
        rows.append({c: row.get(c) for c in columns})
    return pd.DataFrame(rows, columns=columns)
