"""Run records: load a run that was recorded, or train it and record it.

A record is ``<folder>/<chapter>/<name>-<key>.json`` with the learned weights beside it in
``<name>-<key>.pt``; ``key`` is :meth:`Spec.key`, the hash of the whole spec, so a run whose
spec changed in any field is trained anew. The record holds the spec itself, the SHA-256 of its
weights file, the commit of the code that produced it, the device, the wall time, the history
and the final metrics. Loading checks all of it (:func:`load_record`): a record that does not
match its spec or its weights raises :class:`RecordError`, never returns an altered model.

Where records go (:func:`write_dir`):

- smoke profile: the cache (``<cache>/smoke-runs``), never ``results/``;
- full profile at a clean commit: ``results/runs/``, the records the book is built from;
- full profile with uncommitted changes to the code: ``<cache>/scratch-runs``, with a message.
  Such a record cannot be tied to a commit, so it is never published. Changes under
  ``results/`` itself do not count: runs that train side by side write there.

Where the library is installed without the repository (Colab), the published records are
those of the records archive (:mod:`tme_lib.training.published`), and a full-profile run
whose record is missing is not trained unless asked (``TME_TRAIN_MISSING=1``, ``retrain``, or
the run tool): a notebook never starts hours of training silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from .. import config
from ..data.download import sha256sum
from . import published
from .provenance import code_version, describe, recorded_version, short_version
from .spec import Spec
from .trainer import half_state, train

FORMAT = 3  # bump when the layout of a record changes (3: sealed)


class RecordError(RuntimeError):
    """A record that cannot be trusted: unreadable, incomplete, or not the run asked for."""


@dataclass
class RunRecord:
    """What a run leaves behind; ``model`` is set when the weights were loaded or trained."""

    spec: dict
    key: str
    code_version: str
    device: str
    torch_version: str
    started_at: str
    seconds: float
    n_params: int
    weights_sha256: str | None  # None: a fit without learned tensors (metrics only)
    history: list = field(default_factory=list)
    final: dict = field(default_factory=dict)
    format: int = FORMAT
    seal: str | None = None  # seal_of() the rest of the record
    model: torch.nn.Module | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def model_name(self) -> str:
        return self.spec["model"]["name"]

    @property
    def seed(self) -> int:
        return self.spec["seed"]

    @property
    def training(self) -> dict:
        return self.spec["training"]

    @property
    def profile(self) -> str:
        return self.spec["data"].get("profile", "")

    def to_json(self) -> dict:
        """The record as it is stored, sealed: plain JSON values, and ``seal`` over them."""
        data = {k: v for k, v in self.__dict__.items() if k not in ("model", "seal")}
        data = json.loads(json.dumps(data, default=float))
        return {**data, "seal": seal_of(data)}


def seal_of(data: dict) -> str:
    """SHA-256 of everything a record says except its seal, in canonical JSON: the spec, its
    key, the commit, device, timing, history, final metrics and the weights' SHA-256. Changing
    any of it, or swapping the weights file and updating its hash, breaks the seal. The seal has
    no secret: it catches edits and damage, not a forger who recomputes it."""
    body = {k: v for k, v in data.items() if k != "seal"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --- Where records live --------------------------------------------------------------------------


def published_dir(chapter: str) -> Path:
    """``results/runs/<chapter>``: the committed records of the full profile (outside a clone:
    those of the records archive, :func:`.published.runs_dir`)."""
    return published.runs_dir() / chapter


def write_dir(chapter: str, clean: bool | None = None) -> Path:
    """Where a new record of ``chapter`` is written (see the module docstring)."""
    if not config.is_full():
        path = config.cache_dir() / "smoke-runs" / chapter
    elif clean if clean is not None else code_version()[1]:
        path = published_dir(chapter)
    else:
        path = config.cache_dir() / "scratch-runs" / chapter
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_dirs(chapter: str) -> list[Path]:
    """Folders searched for a record, in order: the published ones, then (with uncommitted
    changes only) the scratch folder; the smoke folder in the smoke profile."""
    if not config.is_full():
        return [write_dir(chapter)]
    try:
        dirs = [published_dir(chapter)]
    except config.DataError:  # outside a clone, no records archive
        if not config.train_missing():
            raise
        dirs = []
    if not code_version()[1]:
        dirs.append(config.cache_dir() / "scratch-runs" / chapter)
    return dirs


def record_file(spec: Spec) -> str:
    return f"{spec.name}-{spec.key()}.json"


def find_record(spec: Spec) -> Path | None:
    """The record file of ``spec`` if one exists (not yet checked: see :func:`load_record`)."""
    for folder in read_dirs(spec.chapter):
        path = folder / record_file(spec)
        if path.exists():
            return path
    return None


# A record folder may list, in this file, records whose weights were left out of the repository
# on purpose (runs that lost a choice on validation, whose weights nothing loads): their numbers
# stay, sealed; asked for a model, they say so. One record file name per line, ``#`` comments.
WEIGHTS_NOT_KEPT = "weights_not_kept.txt"


def listed_without_weights(folder: Path) -> set[str]:
    """The record file names that ``folder``'s :data:`WEIGHTS_NOT_KEPT` lists (none without it)."""
    listing = Path(folder) / WEIGHTS_NOT_KEPT
    if not listing.exists():
        return set()
    lines = listing.read_text(encoding="utf-8").splitlines()
    return {line.split("#")[0].strip() for line in lines} - {""}


def weights_not_kept(path: Path) -> bool:
    """Whether the record at ``path`` is listed in its folder's :data:`WEIGHTS_NOT_KEPT`."""
    return Path(path).name in listed_without_weights(Path(path).parent)


def record_problem(spec: Spec) -> str | None:
    """What is wrong with the record of ``spec`` (unreadable, broken seal, weights or a
    snapshot missing or altered), or ``None`` when it checks out or does not exist."""
    path = find_record(spec)
    if path is None:
        return None
    try:
        record = read_record(path, spec)
        weights = path.with_suffix(".pt")
        if record.weights_sha256 is not None and (
            sha256sum(weights) != record.weights_sha256
            if weights.exists()
            else not weights_not_kept(path)
        ):
            return f"{path}: its weights {weights.name} are missing or altered"
        for epoch, sha in record.final.get("snapshots", {}).items():
            file = snapshot_file(weights, epoch)
            if not file.exists() or sha256sum(file) != sha:
                return f"{path}: its snapshot {file.name} is missing or altered"
    except RecordError as error:
        return str(error)
    return None


def retrain_hint(spec: Spec | None, path: Path) -> str:
    if spec is None:
        return f"Delete {path.name} and its .pt, then regenerate the chapter's runs."
    return (
        f"Delete it and its .pt, or retrain with: python -m tme_lib.runs {spec.chapter} "
        f"--only {spec.name} --retrain"
    )


def read_record(path: Path, spec: Spec | None = None) -> RunRecord:
    """The record at ``path``, checked: JSON that parses, every field, a spec whose key is the
    one in the file name (and equal to ``spec`` when given). Weights are not loaded."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        record = RunRecord(**data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as error:
        raise RecordError(
            f"The run record {path} cannot be read ({type(error).__name__}: "
            f"{error}); it may be truncated, or from an older version of the "
            f"course. {retrain_hint(spec, path)}"
        ) from None
    if record.format != FORMAT or record.seal is None:
        raise RecordError(
            f"The run record {path} has format {record.format}, not {FORMAT} (records are "
            f"sealed since format 3). {retrain_hint(spec, path)}"
        )
    try:
        stored = Spec.from_dict(record.spec)
    except (TypeError, ValueError, KeyError) as error:
        raise RecordError(
            f"The spec stored in {path} is not valid ({error}). "
            f"{retrain_hint(spec, path)}"
        ) from None
    if stored.key() != record.key or not path.stem.endswith(record.key):
        raise RecordError(
            f"The spec stored in {path} does not match its key {record.key}: "
            f"the file was edited or renamed. {retrain_hint(spec, path)}"
        )
    if spec is not None and stored.key() != spec.key():
        raise RecordError(
            f"{path} records another run than {spec.label} (key {stored.key()}, "
            f"asked {spec.key()}). {retrain_hint(spec, path)}"
        )
    if seal_of(data) != record.seal:
        raise RecordError(
            f"The run record {path} does not match its seal: a value in it (metrics, "
            f"history, timing, commit or weights' hash) was changed after the run. "
            f"{retrain_hint(spec, path)}"
        )
    return record


def load_weights(
    record: RunRecord, path: Path, model: torch.nn.Module, spec: Spec | None = None
):
    """Load the weights beside the record at ``path`` into ``model``, after checking that the
    file is there and is the one the record was saved with (its SHA-256)."""
    weights = Path(path).with_suffix(".pt")
    if not weights.exists() and weights_not_kept(path):
        raise RecordError(
            f"The weights of the run record {path} were not kept in the repository "
            f"(listed in {WEIGHTS_NOT_KEPT}: nothing in the course loads them). "
            f"{retrain_hint(spec, path)}"
        )
    if not weights.exists():
        raise RecordError(
            f"The run record {path} has no weights file {weights.name}: the "
            f"model cannot be restored. {retrain_hint(spec, path)}"
        )
    if sha256sum(weights) != record.weights_sha256:
        raise RecordError(
            f"The weights {weights} are not those of the run record {path.name} "
            f"(SHA-256 differs): the file is corrupt or was replaced. "
            f"{retrain_hint(spec, path)}"
        )
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as error:
        raise RecordError(
            f"The weights {weights} do not fit the model of {path.name} "
            f"({type(error).__name__}: {error}). {retrain_hint(spec, path)}"
        ) from None


# --- Load or train -------------------------------------------------------------------------------


def _device_description(device: str) -> str:
    if device.startswith("cuda"):
        return f"cuda ({torch.cuda.get_device_name(0)})"
    if device == "cpu":
        machine = platform.processor() or platform.machine()
        return f"cpu ({machine}, {config.threads_text(torch.get_num_threads())})"
    return device


def device_text(description: str) -> str:
    """A record's device as the book prints it (records made before the singular say
    ``"1 threads"``)."""
    return re.sub(r"\b1 threads\b", "1 thread", str(description))


def device_kind(description: str) -> str:
    """The kind of device of a record's description: ``"cpu (x86_64, 1 threads)"`` -> ``"cpu"``,
    ``"cuda (NVIDIA H100)"`` -> ``"cuda"``."""
    return str(description).split(" (")[0]


def load_or_train(
    spec: Spec,
    build_model: Callable[[], torch.nn.Module],
    loaders,
    device=None,
    progress: bool = True,
    retrain: bool = False,
    fit: Callable | None = None,
) -> RunRecord:
    """Load the record (and weights) of ``spec`` if it exists, else train and save it.

    ``build_model`` is called after seeding with ``spec.seed``, so initial weights are
    reproducible. ``loaders`` needs ``.train``, ``.val`` and ``.test``; it may be a callable
    returning them, so that a loaded run never builds them. ``fit`` trains: the course's
    trainer (:func:`~tme_lib.training.trainer.train`), or the pretraining loop
    (:func:`~tme_lib.training.pretrainer.pretrain`), which takes the same arguments.
    """
    device = device or config.get_device(verbose=False)
    path = None if retrain else find_record(spec)
    if path is not None:
        record = read_record(path, spec)
        if (record.weights_sha256 is None and not spec.training.store_weights) or (
            weights_not_kept(path) and not path.with_suffix(".pt").exists()
        ):
            _say_loaded(spec, record)  # its numbers only, by design: record.model is None
            return record
        if record.weights_sha256 is None:
            raise RecordError(
                f"The run record {path} has no weights (a metrics-only fit): "
                f"it cannot restore a model. {retrain_hint(spec, path)}"
            )
        config.set_seed(spec.seed)
        model = build_model()
        load_weights(record, path, model, spec)
        record.model = model.to(device)
        _say_loaded(spec, record)
        return record
    _may_train(spec, retrain)
    return _train_and_save(
        spec, build_model, loaders, device, progress, retrain, fit or train
    )


def _may_train(spec: Spec, retrain: bool) -> None:
    """Refuse to train a full-profile run whose record is missing where the library is
    installed without the repository, unless asked (see the module docstring)."""
    if not config.is_full() or config.IN_CHECKOUT or retrain or config.train_missing():
        return
    lock = published.read_lock()
    raise RecordError(
        f"The run {spec.label} (key {spec.key()}) is not among the book's records (the "
        f"records archive {lock['archive']}), so it would have to be trained here: hours on "
        "a CPU for most runs. Set TME_TRAIN_MISSING=1 to train it, or use the smoke profile "
        "(TME_PROFILE=smoke, the default), which trains tiny models in seconds."
    )


def _destination(spec: Spec) -> tuple[str, bool, Path]:
    """``(commit, clean, folder)`` for a new record of ``spec``; says so when it goes to the
    scratch folder."""
    commit, clean = code_version()
    folder = write_dir(spec.chapter, clean)
    if config.is_full() and not clean and config.IN_CHECKOUT:
        print(
            f"Uncommitted changes to the code: the record of {spec.label} goes to the "
            f"scratch folder {folder}, not to results/. Commit, then run it again to publish."
        )
    elif config.is_full() and not clean:
        print(
            f"The record of {spec.label} ({describe((commit, clean))}) goes to {folder}."
        )
    return commit, clean, folder


_LOADED: list | None = None  # set by loaded_together()


def _say_loaded(spec: Spec, record: RunRecord) -> None:
    if _LOADED is not None:
        _LOADED.append((spec, record))
        return
    print(
        f"Loaded {spec.label} ({record.seconds:.0f} s on {device_kind(record.device)}, "
        f"code {short_version(record.code_version)})"
    )


@contextlib.contextmanager
def loaded_together():
    """Within the block, the records loaded are announced by one line at its end (how many,
    their total training time and the commits of their code) instead of one line each: for
    the notebook cells that load a whole sweep."""
    global _LOADED
    outer, _LOADED = _LOADED, []
    try:
        yield
    finally:
        loaded, _LOADED = _LOADED, outer
        if loaded:
            seconds = sum(r.seconds for _, r in loaded)
            versions = sorted({short_version(r.code_version) for _, r in loaded})
            devices = sorted({device_kind(r.device) for _, r in loaded})
            spent = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
            code = (
                f"code {', '.join(versions)}"
                if len(versions) <= 2
                else f"code of {len(versions)} commits"
            )
            print(
                f"Loaded {len(loaded)} records ({spent} of training on "
                f"{', '.join(devices)}, {code})"
            )


def _train_and_save(
    spec: Spec, build_model, loaders, device, progress, retrain: bool, fit
) -> RunRecord:
    commit, clean, folder = _destination(spec)
    stale = sorted(
        p.name for p in folder.glob(f"{spec.name}-*.json") if p.name != record_file(spec)
    )
    if stale:
        print(
            f"The spec of {spec.label} changed (new key {spec.key()}): training anew; older "
            f"records left untouched: {', '.join(stale)}"
        )
    if callable(loaders) and not hasattr(loaders, "train"):
        loaders = loaders()
    config.set_seed(spec.seed)
    model = build_model()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out = fit(
        spec,
        model,
        loaders,
        device=device,
        progress=progress,
        code=(commit, clean),
        resume=not retrain,
    )
    path = folder / record_file(spec)
    weights = path.with_suffix(".pt")
    if spec.training.store_weights:
        tmp_weights = weights.with_suffix(f".pt.{os.getpid()}.tmp")
        state = model.state_dict()
        state = half_state(state) if spec.training.store_half else state
        with config.writing(tmp_weights, f"the weights of {spec.label}"):
            torch.save({k: v.cpu() for k, v in state.items()}, tmp_weights)
        tmp_weights.replace(weights)
    final = dict(out["final"])
    if out.get("snapshots"):  # the weights after some epochs, each a file of its own
        final["snapshots"] = {
            str(epoch): save_snapshot(weights, epoch, snapshot)
            for epoch, snapshot in out["snapshots"].items()
        }
    record = RunRecord(
        spec=spec.to_dict(),
        key=spec.key(),
        code_version=recorded_version((commit, clean)),
        device=_device_description(out["device"]),
        torch_version=torch.__version__,
        started_at=started,
        seconds=round(out["seconds"], 2),
        n_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        weights_sha256=sha256sum(weights) if spec.training.store_weights else None,
        history=out["history"],
        final=final,
        model=model,
    )
    write_record(
        path, record
    )  # the record appears last: on disk it always has its weights
    out["checkpoint"].unlink(missing_ok=True)
    return record


def snapshot_file(weights: Path, epoch: int | str) -> Path:
    """``<name>-<key>.e<epoch>.pt``, beside the record's weights ``<name>-<key>.pt``."""
    return weights.with_suffix(f".e{epoch}.pt")


def save_snapshot(weights: Path, epoch: int, state: dict) -> str:
    """Write the snapshot of ``epoch`` beside ``weights``; its SHA-256 (the record lists it)."""
    path = snapshot_file(weights, epoch)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with config.writing(tmp, f"the snapshot of epoch {epoch}"):
        torch.save(state, tmp)
    tmp.replace(path)
    return sha256sum(path)


def load_snapshot(record: RunRecord, path: Path, epoch: int) -> dict:
    """The state saved after ``epoch`` by the run of the record at ``path``, checked against
    the SHA-256 the record lists for it."""
    listed = record.final.get("snapshots", {})
    if str(epoch) not in listed:
        raise RecordError(
            f"The run record {path.name} kept no weights after epoch {epoch}; it kept "
            f"epochs {', '.join(listed) or 'none'}."
        )
    file = snapshot_file(Path(path).with_suffix(".pt"), epoch)
    if not file.exists() or sha256sum(file) != listed[str(epoch)]:
        raise RecordError(
            f"The snapshot {file} is missing or is not the one the record {path.name} lists "
            f"(SHA-256 differs). {retrain_hint(None, path)}"
        )
    return torch.load(file, map_location="cpu", weights_only=True)


def write_record(path: Path, record: RunRecord) -> None:
    """Write ``record`` (sealed) to ``path`` whole or not at all: a temporary file of this
    process, then an atomic rename."""
    tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
    with config.writing(tmp, f"the record {path.name}"):
        tmp.write_text(json.dumps(record.to_json(), indent=1), encoding="utf-8")
    tmp.replace(path)


def load_or_fit(spec: Spec, fit: Callable[[], dict], retrain: bool = False) -> RunRecord:
    """The record of a run that learns no tensors to restore (a scikit-learn baseline): loaded
    and checked if it exists, else ``fit()`` is called and its ``history``, ``final``,
    ``seconds`` and ``n_params`` are recorded, with the spec and the commit, and no weights
    file (``weights_sha256`` is None)."""
    path = None if retrain else find_record(spec)
    if path is not None:
        record = read_record(path, spec)
        _say_loaded(spec, record)
        return record
    _may_train(spec, retrain)
    commit, clean, folder = _destination(spec)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out = fit()
    record = RunRecord(
        spec=spec.to_dict(),
        key=spec.key(),
        code_version=recorded_version((commit, clean)),
        device=_device_description("cpu").replace("threads", "threads, scikit-learn"),
        torch_version=torch.__version__,
        started_at=started,
        seconds=round(out["seconds"], 2),
        n_params=out["n_params"],
        weights_sha256=None,
        history=out["history"],
        final=out["final"],
    )
    path = folder / record_file(spec)
    write_record(path, record)
    return record


# --- Tables --------------------------------------------------------------------------------------


def existing_records(specs: list[Spec]) -> list[RunRecord]:
    """The checked records of ``specs`` that exist (a record of another spec is never used)."""
    return [
        read_record(path, spec)
        for spec in specs
        if (path := find_record(spec)) is not None
    ]


RESULT_COLUMNS = [
    "model",
    "optimizer",
    "seed",
    "epochs",
    "train_loss",
    "train_acc",
    "val_acc",
    "test_loss",
    "test_acc",
    "mean_entropy",
    "seconds",
    "device",
    "entropy_weight",
    "name",
]


def record_row(r: RunRecord) -> dict:
    """One flat row of a record: training settings, final metrics, cost and provenance."""
    return {
        **r.spec["training"],
        **r.final,
        "name": r.name,
        "model": r.spec["model"]["name"],
        "seed": r.spec["seed"],
        "epochs": len(r.history),
        "seconds": r.seconds,
        "device": r.device,
        "params": r.n_params,
        "code_version": short_version(r.code_version),
    }


def results_table(
    records: list[RunRecord], columns: list[str] = RESULT_COLUMNS
) -> pd.DataFrame:
    """One row per run (:func:`record_row`), in ``columns`` order; a column that a record
    lacks is left empty."""
    rows = [record_row(r) for r in records]
    return pd.DataFrame(
        [{c: row.get(c) for c in columns} for row in rows], columns=columns
    )
