"""The one trainer of the course: every chapter trains through :func:`train`.

It builds Adam/AdamW/SGD and the learning-rate schedule of the run's
:class:`~tme_lib.training.spec.Training`, records a per-epoch history (losses, accuracy or R²,
mean attention entropy and a sample of per-example entropies for histograms), keeps the epoch
with the best validation score and stops early, writes a checkpoint after each epoch and
resumes from it after an interruption, refuses to go on when the loss stops being finite, and
tests once.

A checkpoint names the spec's key and the code that wrote it (commit, and whether the working
tree was clean). It is resumed only by the same spec and the same code: a checkpoint written
by other code, or by uncommitted code when the code is now clean, is set aside and the run
starts again, so the commit of a published record covers every epoch of its run. A checkpoint
that cannot be read is set aside too.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import config, interrupts
from .metrics import attention_entropy, pearson, r2_score, spearman
from .provenance import code_version, describe
from .spec import Spec, Training


def make_optimizer(training: Training, params) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if training.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=training.lr,
            momentum=training.momentum,
            weight_decay=training.weight_decay,
        )
    cls = torch.optim.AdamW if training.optimizer == "adamw" else torch.optim.Adam
    return cls(
        params, lr=training.lr, betas=training.betas, weight_decay=training.weight_decay
    )


def make_scheduler(training: Training, optimizer, steps_per_epoch: int):
    """The schedule of ``training.schedule``, stepped once per batch (``None`` if constant)."""
    params = dict(training.schedule)
    name = params.pop("name")
    total = training.total_steps(steps_per_epoch)
    if name == "constant":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=total, **params
        )
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=training.lr, total_steps=total, **params
    )


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
def evaluate(
    model,
    loader,
    task: str = "classification",
    device=None,
    prefix: str = "val",
    entropy_sample: int = 500,
    entropy_every: int = 1,
) -> dict:
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
        meter.add(
            output, batch.y, loss_fn(output, batch.y, task).item(), weights, batch.mask
        )
    model.train(was_training)
    return meter.summary(prefix)


@torch.no_grad()
def probe_entropies(model, loader, device) -> dict[str, list[float]]:
    """Per-review attention entropy ``H`` (nats) and normalised entropy ``H / log n`` over a
    fixed probe of reviews, in eval mode (``n`` real tokens; a one-token review counts as 1).
    Empty when the model has no attention weights."""
    was_training = model.training
    model.eval()
    entropies, normalised = [], []
    for batch in loader:
        batch = batch.to(device)
        with weights_on(model, True):
            _, weights = model(batch.x, batch.mask)
        if weights is None:
            break
        h = attention_entropy(weights, batch.mask).float().cpu()
        log_n = batch.mask.sum(1).clamp_min(2).float().log().cpu()
        entropies += h.tolist()
        normalised += (h / log_n).tolist()
    model.train(was_training)
    return {
        "entropy_sample": [round(v, 5) for v in entropies],
        "entropy_norm_sample": [round(v, 5) for v in normalised],
    }


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


def _monitor(training: Training, entry: dict) -> float:
    """Validation score to maximise: accuracy for classification, -loss for regression."""
    return entry["val_acc"] if training.task == "classification" else -entry["val_loss"]


def half_state(state: dict) -> dict:
    """``state`` with its floating-point tensors in half precision, on the CPU: how a record
    with ``store_half`` and a pretraining snapshot are stored (loading casts them back)."""
    return {
        k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
        for k, v in state.items()
    }


def checkpoint_path(spec: Spec) -> Path:
    folder = config.cache_dir() / "checkpoints" / spec.chapter
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{spec.name}-{spec.key()}.pt"


@dataclass
class _Progress:
    """Where a run stands after each epoch: what a checkpoint saves and a resume restores."""

    history: list = field(default_factory=list)
    best_score: float = -math.inf
    best_state: dict | None = None
    bad_epochs: int = 0
    epoch: int = 0
    seconds: float = 0.0


def save_checkpoint(path: Path, stamp: dict, state: dict) -> None:
    """Write ``state`` with its ``stamp`` (spec key and code) to ``path``, whole or not at all:
    a temporary file of this process, then an atomic rename, so that two processes running the
    same spec never rename each other's half-written file."""
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
    try:
        with config.writing(tmp, f"the checkpoint of {stamp.get('key')}"):
            torch.save({"stamp": stamp, **state}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def checkpoint_stamp(spec: Spec, code: tuple[str, bool]) -> dict:
    """What a checkpoint says of its origin: the spec's key, the commit, whether it was clean."""
    return {"key": spec.key(), "commit": code[0], "clean": bool(code[1])}


def set_aside(path: Path, suffix: str, why: str) -> None:
    """Rename ``path`` to ``*.<suffix>`` and say why; the run then starts from scratch."""
    aside = path.with_suffix(f".{suffix}")
    os.replace(path, aside)
    print(f"{why}; it was moved to {aside} and the run starts from scratch.")


def load_checkpoint(
    path: Path, spec: Spec, code: tuple[str, bool], device
) -> dict | None:
    """The state saved in ``path`` if it was written for ``spec`` by this very code, else
    ``None`` (an unreadable or foreign checkpoint is set aside, with a message)."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=False)
        stamp = state["stamp"]
    except Exception as error:  # any unreadable checkpoint: never fatal
        set_aside(
            path,
            "corrupt",
            f"The checkpoint of {spec.label} could not be read ({type(error).__name__}: "
            f"{error})",
        )
        return None
    if stamp != checkpoint_stamp(spec, code):
        made_by = (stamp["commit"], stamp["clean"])
        set_aside(
            path,
            "stale",
            f"The checkpoint of {spec.label} was written by code {describe(made_by)}, "
            f"not by this code ({describe(code)})"
            + ("" if stamp["key"] == spec.key() else " and for another spec"),
        )
        return None
    return state


def _save_checkpoint(
    path: Path, stamp: dict, progress: _Progress, model, optimizer, scheduler
) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler else None,
        "rng": torch.get_rng_state(),
        **progress.__dict__,
    }
    save_checkpoint(path, stamp, state)


def _resume(
    path: Path, spec: Spec, code, model, optimizer, scheduler, device
) -> _Progress:
    """The progress saved in ``path``, with model, optimizer, schedule and random state restored;
    a fresh start when there is none, or when it was not written by this code for this spec
    (:func:`load_checkpoint`)."""
    state = load_checkpoint(path, spec, code, device)
    if state is None:
        return _Progress()
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        progress = _Progress(**{k: state[k] for k in _Progress.__dataclass_fields__})
    except Exception as error:  # a checkpoint that does not fit: never fatal
        set_aside(
            path,
            "corrupt",
            f"The checkpoint of {spec.label} does not fit its model ({type(error).__name__}: "
            f"{error})",
        )
        config.set_seed(spec.seed)
        return _Progress()
    print(f"Resuming {spec.label} from epoch {progress.epoch} ({path.name})")
    return progress


def _objective(spec: Spec, output, weights, batch, epoch: int, step: int, ckpt: Path):
    """``(loss, loss + λ·mean entropy)`` of one batch; raises when it is not finite."""
    training = spec.training
    loss = loss_fn(output, batch.y, training.task)
    objective = loss
    if training.entropy_weight:
        if weights is None:
            raise ValueError(
                f"entropy_weight={training.entropy_weight} needs a model that "
                "returns attention weights"
            )
        penalty = attention_entropy(weights, batch.mask).mean()
        objective = loss + training.entropy_weight * penalty
    if not torch.isfinite(objective):
        where = (
            f"the checkpoint of the last complete epoch is {ckpt}"
            if ckpt.exists()
            else "no epoch was completed, so there is no checkpoint"
        )
        raise FloatingPointError(
            f"{spec.label}: the loss became {objective.item()} at epoch {epoch + 1}, batch "
            f"{step + 1}. Lower the learning rate (lr={training.lr}) or entropy_weight "
            f"({training.entropy_weight}), or set grad_clip; {where}."
        )
    return loss, objective


def train_epoch(
    spec: Spec,
    model,
    loader,
    optimizer,
    scheduler,
    device,
    epoch: int,
    ckpt: Path,
    progress: bool = True,
) -> dict:
    """One pass over the training batches; returns the epoch's training metrics."""
    training = spec.training
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    model.train()
    meter = _Meter(
        training.task,
        keep_outputs=training.task == "regression",
        entropy_sample=training.entropy_sample,
    )
    bar = tqdm(
        loader,
        desc=f"{spec.name} epoch {epoch + 1}/{training.epochs}",
        leave=False,
        disable=not progress,
    )
    for step, batch in enumerate(bar):
        interrupts.check()  # a stop asked for: the last epoch's checkpoint stands
        batch = batch.to(device)
        output, weights = model(batch.x, batch.mask)
        loss, objective = _objective(spec, output, weights, batch, epoch, step, ckpt)
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if training.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), training.grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        meter.add(output, batch.y, loss.item(), weights, batch.mask)
        bar.set_postfix(loss=f"{meter.loss / meter.n:.4f}")
    return meter.summary("train")


# A run diverges when its training loss grows this many times above that of its first epoch
# (or, for a classifier, above this many times the log 2 of a coin toss): finite, but absurd.
DIVERGENCE_FACTOR = 100.0


def _check_divergence(spec: Spec, history: list[dict], ckpt: Path) -> None:
    """Stop a run whose epoch loss is absurd; its checkpoint is removed, so nothing of it is
    kept or recorded."""
    first, last = history[0]["train_loss"], history[-1]["train_loss"]
    ceiling = DIVERGENCE_FACTOR * (
        math.log(2) if spec.training.task == "classification" else max(first, 1e-12)
    )
    if last > ceiling or (len(history) > 1 and last > DIVERGENCE_FACTOR * first):
        ckpt.unlink(missing_ok=True)
        raise FloatingPointError(
            f"{spec.label}: the training loss reached {last:.4g} at epoch {len(history)} "
            f"(first epoch {first:.4g}): the run diverged and nothing was recorded. Lower the "
            f"learning rate (lr={spec.training.lr}) or set grad_clip."
        )


def _keep_best(state: _Progress, training: Training, entry: dict, model) -> None:
    """Remember the weights of the best validation epoch; count the epochs since it."""
    score = _monitor(training, entry)
    if score > state.best_score:
        state.best_score, state.bad_epochs = score, 0
        state.best_state = {
            k: v.detach().cpu().clone() for k, v in model.state_dict().items()
        }
    else:
        state.bad_epochs += 1


def _epoch(
    spec: Spec,
    model,
    loaders,
    optimizer,
    scheduler,
    device,
    epoch: int,
    ckpt: Path,
    progress: bool,
) -> dict:
    """One epoch: train, evaluate on validation, measure the probe; its history entry."""
    training = spec.training
    t0 = time.perf_counter()
    entry = {"epoch": epoch + 1}
    entry.update(
        train_epoch(
            spec,
            model,
            loaders.train,
            optimizer,
            scheduler,
            device,
            epoch,
            ckpt,
            progress,
        )
    )
    entry.update(
        evaluate(
            model,
            loaders.val,
            training.task,
            device,
            "val",
            training.entropy_sample,
            training.entropy_every,
        )
    )
    # The histograms' samples: the same reviews every epoch, train and validation drawn alike
    # (loaders.probe), rather than the first reviews of each pass.
    for split, loader in getattr(loaders, "probe", {}).items():
        sample = probe_entropies(model, loader, device)
        entry.update({f"{split}_{k}": v for k, v in sample.items() if v})
    entry["seconds"] = time.perf_counter() - t0
    return entry


def train(
    spec: Spec,
    model: torch.nn.Module,
    loaders,
    device=None,
    progress: bool = True,
    code: tuple[str, bool] | None = None,
    resume: bool = True,
) -> dict:
    """Train ``model`` on ``loaders.train``, select the epoch on ``loaders.val``, test once.

    Returns ``history`` (one dict per epoch), ``final`` (the best epoch's metrics and the test
    metrics), ``seconds``, ``device`` and ``checkpoint``; the model is left with the weights of
    the best validation epoch. Resumes from the checkpoint of an interrupted run of the same
    spec written by the same ``code`` (``(commit, clean)``, default: the working tree's); with
    ``resume=False`` a checkpoint is deleted and the run starts from scratch.
    """
    training = spec.training
    device = device or config.get_device()
    code = code or code_version()
    config.set_seed(spec.seed)
    model.to(device)
    optimizer = make_optimizer(training, model.parameters())
    scheduler = make_scheduler(training, optimizer, len(loaders.train))
    ckpt = checkpoint_path(spec)
    if not resume and ckpt.exists():
        ckpt.unlink()
        print(f"Retraining {spec.label}: its checkpoint was deleted.")
    state = _resume(ckpt, spec, code, model, optimizer, scheduler, device)
    stamp = checkpoint_stamp(spec, code)

    for epoch in range(state.epoch, training.epochs):
        if state.bad_epochs >= (training.patience or math.inf):
            break
        entry = _epoch(
            spec, model, loaders, optimizer, scheduler, device, epoch, ckpt, progress
        )
        state.seconds += entry["seconds"]
        state.history.append(entry)
        state.epoch = epoch + 1
        _check_divergence(spec, state.history, ckpt)
        _keep_best(state, training, entry, model)
        if progress:
            shown = {k: round(v, 4) for k, v in entry.items() if isinstance(v, float)}
            print(f"{spec.name} epoch {epoch + 1}: {shown}")
        _save_checkpoint(ckpt, stamp, state, model, optimizer, scheduler)

    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    if training.store_half:  # the test scores the weights as they are stored
        model.load_state_dict(half_state(model.state_dict()))
    t0 = time.perf_counter()
    final = best_epoch_metrics(state.history, training)
    final.update(final_test(model, loaders.test, training, device))
    state.seconds += time.perf_counter() - t0
    return {
        "history": state.history,
        "final": final,
        "seconds": state.seconds,
        "device": str(device),
        "checkpoint": ckpt,
    }


def best_epoch_metrics(history: list[dict], training: Training) -> dict:
    """The metrics of the best validation epoch (without the entropy samples), its number as
    ``best_epoch``."""
    if not history:
        return {"best_epoch": 0}
    best = max(history, key=lambda e: _monitor(training, e))
    final = {
        k: v for k, v in best.items() if not k.endswith("_sample") and k != "seconds"
    }
    final["best_epoch"] = final.pop("epoch")
    return final


def final_test(model, loader, training: Training, device) -> dict:
    """The one evaluation on the test split: loss, accuracy or regression scores, entropy."""
    out = evaluate(
        model,
        loader,
        training.task,
        device,
        "test",
        training.entropy_sample,
        training.entropy_every,
    )
    out.pop("test_entropy_sample", None)
    if "test_entropy" in out:
        out["mean_entropy"] = out.pop("test_entropy")
    if training.task == "regression":  # one pass: the scores come from the outputs kept
        out.update(
            test_mse=out["test_loss"],
            pearson=out.pop("test_pearson"),
            spearman=out.pop("test_spearman"),
        )
    return out
