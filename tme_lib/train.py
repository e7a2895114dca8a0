"""The one trainer of the course: every chapter trains through :func:`train`.

It chooses the device, seeds, builds Adam/AdamW/SGD, records a per-epoch history (losses,
accuracy or R², mean attention entropy and a sample of per-example entropies for histograms),
stops early on the validation metric, writes a checkpoint after each epoch and resumes from it
after an interruption, and refuses to go on when the loss stops being finite.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from tme_lib import config
from tme_lib.metrics import attention_entropy, pearson, r2_score, spearman

TASKS = ("classification", "regression")


# Fields added to TrainConfig after run records were committed, with their defaults: a config
# that leaves them at the default keeps the hash (and the record) it had before they existed.
_LATER_FIELDS = {"entropy_every": 1}


@dataclass
class TrainConfig:
    """Everything that determines a run. Its hash names the run record (see ``records``)."""

    chapter: str
    name: str  # names the run record; unique within a chapter (e.g. "attention_simple-adam-s0")
    model: str = ""  # the model's name in the chapter's registry; defaults to ``name``
    model_kwargs: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    optimizer: str = "adam"  # adam, adamw or sgd
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 10
    patience: int | None = None  # early stopping: epochs without improvement on validation
    seed: int = 0
    entropy_weight: float = 0.0  # λ in L + λ·(mean attention entropy)
    task: str = "classification"
    grad_clip: float | None = None
    scheduler: str | None = None  # None, "cosine" or "onecycle" (stepped per batch)
    entropy_sample: int = 500  # per-example entropies kept per epoch for histograms
    # Attention weights (for entropies) on every k-th evaluation batch only; the other batches
    # use the model's fast path. Loaders are sorted by length, so every k-th batch is a sample
    # stratified by length. Loss and accuracy always cover every batch.
    entropy_every: int = 1

    def __post_init__(self):
        self.model = self.model or self.name
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r}: use one of {TASKS}")
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"optimizer={self.optimizer!r}: use adam, adamw or sgd")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Short hash of the config and the profile: a changed config gets a new record."""
        fields = self.to_dict()
        for name, default in _LATER_FIELDS.items():  # added after records existed: hashed if set
            if fields[name] == default:
                del fields[name]
        payload = json.dumps({**fields, "profile": config.profile()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:10]


def _make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _make_scheduler(cfg: TrainConfig, optimizer, steps_per_epoch: int):
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.scheduler is None:
        return None
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if cfg.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total)
    raise ValueError(f"scheduler={cfg.scheduler!r}: use None, 'cosine' or 'onecycle'")


def loss_fn(output: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Binary cross-entropy on logits for classification, mean squared error for regression."""
    if task == "classification":
        return F.binary_cross_entropy_with_logits(output, y.float())
    return F.mse_loss(output, y.float())


@contextlib.contextmanager
def weights_on(model: torch.nn.Module, on: bool = True):
    """Ask a model that only computes attention weights on request (``need_weights``) for them."""
    if not hasattr(model, "need_weights"):
        yield
        return
    before = model.need_weights
    model.need_weights = on
    try:
        yield
    finally:
        model.need_weights = before


class _Meter:
    """Running sums over one pass: loss, correct predictions, entropies, outputs."""

    def __init__(self, task: str, keep_outputs: bool, entropy_sample: int):
        self.task, self.keep, self.sample_size = task, keep_outputs, entropy_sample
        self.n = 0
        self.loss = 0.0
        self.correct = 0.0
        self.entropy_sum, self.entropy_n = 0.0, 0
        self.sample: list[float] = []
        self.outputs: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def add(self, output, y, loss, weights, mask):
        b = y.shape[0]
        self.n += b
        self.loss += loss * b
        if self.task == "classification":
            self.correct += ((output > 0).to(y.dtype) == y).sum().item()
        if weights is not None:
            h = attention_entropy(weights.detach(), mask).float().cpu()
            self.entropy_sum += h.sum().item()
            self.entropy_n += h.numel()
            room = self.sample_size - len(self.sample)
            if room > 0:
                self.sample.extend(h[:room].tolist())
        if self.keep:
            self.outputs.append(output.detach().float().cpu())
            self.targets.append(y.detach().float().cpu())

    def summary(self, prefix: str) -> dict:
        out = {f"{prefix}_loss": self.loss / max(self.n, 1)}
        if self.task == "classification":
            out[f"{prefix}_acc"] = self.correct / max(self.n, 1)
        if self.entropy_n:
            out[f"{prefix}_entropy"] = self.entropy_sum / self.entropy_n
            out[f"{prefix}_entropy_sample"] = [round(v, 5) for v in self.sample]
        if self.keep and self.outputs:
            pred, y = torch.cat(self.outputs), torch.cat(self.targets)
            if self.task == "regression":
                out[f"{prefix}_r2"] = r2_score(pred, y)
                out[f"{prefix}_pearson"] = pearson(pred, y)
                out[f"{prefix}_spearman"] = spearman(pred, y)
        return out


@torch.no_grad()
def evaluate(model, loader, task: str = "classification", device=None, prefix: str = "val",
             entropy_sample: int = 500, entropy_every: int = 1) -> dict:
    """One pass without gradients: ``{prefix}_loss``, ``_acc`` or ``_r2``, ``_entropy``, ...

    Attention weights are requested on batches ``0, k, 2k, ...`` (``k = entropy_every``) only,
    so the entropies describe that sample of batches."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    meter = _Meter(task, keep_outputs=task == "regression", entropy_sample=entropy_sample)
    for i, batch in enumerate(loader):
        batch = batch.to(device)
        with weights_on(model, i % entropy_every == 0):
            output, weights = model(batch.x, batch.mask)
        meter.add(output, batch.y, loss_fn(output, batch.y, task).item(), weights, batch.mask)
    model.train(was_training)
    return meter.summary(prefix)


@torch.no_grad()
def predict(model, loader, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs (logits or predictions) and targets over a loader, in loader order."""
    device = device or next(model.parameters()).device
    model.eval()
    outputs, targets = [], []
    for batch in loader:
        batch = batch.to(device)
        outputs.append(model(batch.x, batch.mask)[0].float().cpu())
        targets.append(batch.y.float().cpu())
    return torch.cat(outputs), torch.cat(targets)


def _monitor(cfg: TrainConfig, entry: dict) -> float:
    """Validation score to maximise: accuracy for classification, -loss for regression."""
    return entry["val_acc"] if cfg.task == "classification" else -entry["val_loss"]


def checkpoint_path(cfg: TrainConfig) -> Path:
    folder = config.cache_dir() / "checkpoints" / config.profile() / cfg.chapter
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{cfg.name}-{cfg.hash()}.pt"


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig, model: torch.nn.Module, loaders, device=None, progress: bool = True) -> dict:
    """Train ``model`` on ``loaders.train``, select the epoch on ``loaders.val``, test once.

    Returns the run's record as a dict (see :mod:`tme_lib.records`); the model is left with the
    weights of the best validation epoch. Resumes from the checkpoint of an interrupted run with
    the same config.
    """
    device = device or config.get_device()
    config.set_seed(cfg.seed)
    model.to(device)
    optimizer = _make_optimizer(cfg, model.parameters())
    scheduler = _make_scheduler(cfg, optimizer, len(loaders.train))
    history: list[dict] = []
    best_score, best_state, bad_epochs, start_epoch, seconds = -math.inf, None, 0, 0, 0.0

    ckpt = checkpoint_path(cfg)
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        history, best_score, best_state = state["history"], state["best_score"], state["best_state"]
        bad_epochs, start_epoch, seconds = state["bad_epochs"], state["epoch"], state["seconds"]
        torch.set_rng_state(state["rng"])
        print(f"Resuming {cfg.chapter}/{cfg.name} from epoch {start_epoch} ({ckpt.name})")

    for epoch in range(start_epoch, cfg.epochs):
        if bad_epochs >= (cfg.patience or math.inf):
            break
        t0 = time.perf_counter()
        if hasattr(loaders.train, "set_epoch"):
            loaders.train.set_epoch(epoch)
        model.train()
        meter = _Meter(cfg.task, keep_outputs=cfg.task == "regression", entropy_sample=cfg.entropy_sample)
        bar = tqdm(loaders.train, desc=f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not progress)
        for step, batch in enumerate(bar):
            batch = batch.to(device)
            output, weights = model(batch.x, batch.mask)
            loss = loss_fn(output, batch.y, cfg.task)
            objective = loss
            if cfg.entropy_weight:
                if weights is None:
                    raise ValueError(f"entropy_weight={cfg.entropy_weight} needs a model that returns attention weights")
                objective = loss + cfg.entropy_weight * attention_entropy(weights, batch.mask).mean()
            if not torch.isfinite(objective):
                raise FloatingPointError(
                    f"{cfg.chapter}/{cfg.name}: the loss became {objective.item()} at epoch {epoch + 1}, "
                    f"batch {step + 1}. Lower the learning rate (lr={cfg.lr}) or entropy_weight "
                    f"({cfg.entropy_weight}), or set grad_clip; the last checkpoint is {ckpt}."
                )
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            meter.add(output, batch.y, loss.item(), weights, batch.mask)
            bar.set_postfix(loss=f"{meter.loss / meter.n:.4f}")
        entry = {"epoch": epoch + 1, **meter.summary("train")}
        entry.update(evaluate(model, loaders.val, cfg.task, device, "val", cfg.entropy_sample,
                              cfg.entropy_every))
        entry["seconds"] = time.perf_counter() - t0
        seconds += entry["seconds"]
        history.append(entry)
        score = _monitor(cfg, entry)
        if score > best_score:
            best_score, bad_epochs = score, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        if progress:
            shown = {k: round(v, 4) for k, v in entry.items() if isinstance(v, float)}
            print(f"{cfg.name} epoch {epoch + 1}: {shown}")
        _save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict() if scheduler else None,
                      "history": history, "best_score": best_score, "best_state": best_state,
                      "bad_epochs": bad_epochs, "epoch": epoch + 1, "seconds": seconds,
                      "rng": torch.get_rng_state()}, ckpt)

    if best_state is not None:
        model.load_state_dict(best_state)
    best = max(history, key=lambda e: _monitor(cfg, e)) if history else {}
    t0 = time.perf_counter()
    final = {k: v for k, v in best.items() if not k.endswith("_sample") and k not in ("seconds",)}
    final["best_epoch"] = final.pop("epoch", 0)
    final.update(final_test(model, loaders.test, cfg, device))
    seconds += time.perf_counter() - t0
    return {"history": history, "final": final, "seconds": seconds, "device": str(device),
            "checkpoint": ckpt}


def final_test(model, loader, cfg: TrainConfig, device) -> dict:
    """The one evaluation on the test split: loss, accuracy or regression scores, entropy."""
    out = evaluate(model, loader, cfg.task, device, "test", cfg.entropy_sample, cfg.entropy_every)
    out.pop("test_entropy_sample", None)
    if "test_entropy" in out:
        out["mean_entropy"] = out.pop("test_entropy")
    if cfg.task == "regression":  # one pass: the scores come from the outputs evaluate kept
        out.update(test_mse=out["test_loss"], pearson=out.pop("test_pearson"),
                   spearman=out.pop("test_spearman"))
    return out
