"""Pretraining, by masked-language modelling or replaced-token detection: the loop of
``notebooks/05_pretraining``.

It uses the trainer's optimizers, schedules and checkpoints (:mod:`tme_lib.training.trainer`)
but not its epochs of labelled batches: each batch of reviews is masked afresh
(:func:`~tme_lib.blocks.masked_lm.mask_tokens`, from a generator seeded by the run's seed and
the step, so a resumed run masks exactly as an uninterrupted one), the model's loss is the
cross-entropy on the chosen positions, and after each epoch the loss and the share of masked
words guessed right are measured on held-out reviews, masked the same way every epoch.

A checkpoint is written every ``checkpoint_every`` seconds and after every epoch, so an
interruption costs minutes, not an epoch; it carries the model's state after the epochs of
``training.snapshots``, saved in half precision (the weights that fine-tuning starts from, and
the points of the chapter's learning curve).

On a GPU the forward pass and the loss run under bfloat16 autocast (the record's ``final``
says ``precision``); on a CPU everything is float32.
"""

from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from .. import config, interrupts
from ..blocks.masked_lm import mask_tokens
from ..data.batching import BucketLoader
from ..data.pretraining import FIRST_WORD, MASK, PretrainingText
from .provenance import code_version
from .spec import Spec, Training
from .trainer import (
    checkpoint_path,
    checkpoint_stamp,
    half_state,
    load_checkpoint,
    make_optimizer,
    make_scheduler,
    save_checkpoint,
)

CHECKPOINT_EVERY = 600.0  # seconds between checkpoints within an epoch


def masking_generator(seed: int, step: int) -> torch.Generator:
    """The generator that masks batch ``step`` of a run of seed ``seed``."""
    return torch.Generator().manual_seed(1_000_003 * seed + step)


@torch.no_grad()
def heldout_scores(
    model, split, vocab_size: int, device, training: Training, batch_size: int = 64
) -> dict:
    """Masked-LM loss and accuracy (share of chosen tokens whose top guess is right) on
    ``split``, masked with the same generator every time, in eval mode."""
    was_training = model.training
    model.eval()
    total, correct, n = 0.0, 0, 0
    loader = BucketLoader(split, batch_size, shuffle=False)
    for step, batch in enumerate(loader):
        x, mask = batch.x.to(device), batch.mask.to(device)
        inputs, labels = _masked(
            x, mask, vocab_size, masking_generator(-1, step), training
        )
        logits, chosen = model.guesses(inputs, mask, labels)
        total += torch.nn.functional.cross_entropy(
            logits.float(), chosen, reduction="sum"
        ).item()
        correct += (logits.argmax(-1) == chosen).sum().item()
        n += len(chosen)
    model.train(was_training)
    return {"heldout_loss": total / max(n, 1), "heldout_acc": correct / max(n, 1)}


def _masked(x, mask, vocab_size, generator, training: Training):
    """The batch masked on the CPU (so the masks do not depend on the device)."""
    inputs, labels = mask_tokens(
        x.cpu(),
        mask.cpu(),
        MASK,
        FIRST_WORD,
        vocab_size,
        training.mask_rate,
        generator,
        training.mask_shares,
    )
    return inputs.to(x.device), labels.to(x.device)


def pretrain(
    spec: Spec,
    model: torch.nn.Module,
    text: PretrainingText,
    device=None,
    progress: bool = True,
    code: tuple[str, bool] | None = None,
    resume: bool = True,
) -> dict:
    """Pretrain ``model`` (a masked language model with ``loss(inputs, mask, labels)`` and
    ``guesses(...)``) on ``text.pretrain`` for ``spec.training.epochs`` epochs (or its
    ``max_steps``, the last epoch then cut short); returns
    ``history`` (one entry per epoch), ``final`` (the last epoch's held-out scores), ``seconds``,
    ``device``, ``checkpoint`` and ``snapshots`` (epoch -> half-precision state)."""
    training = spec.training
    device = torch.device(device or config.get_device())
    autocast = device.type == "cuda"  # on a GPU: bfloat16 autocast (the record says so)
    code = code or code_version()
    vocab_size = len(text.vocab)
    config.set_seed(spec.seed)
    model.to(device)
    loader = BucketLoader(
        text.pretrain,
        training.batch_size,
        seed=spec.seed,
        chunk_batches=training.chunk_batches,
    )
    steps_per_epoch = len(loader)
    total = training.total_steps(steps_per_epoch)
    epochs = -(-total // steps_per_epoch)  # the last one may be cut (max_steps)
    optimizer = make_optimizer(training, model.parameters())
    scheduler = make_scheduler(training, optimizer, steps_per_epoch)
    ckpt = checkpoint_path(spec)
    if not resume and ckpt.exists():
        ckpt.unlink()
        print(f"Retraining {spec.label}: its checkpoint was deleted.")
    stamp = checkpoint_stamp(spec, code)
    state = dict(step=0, history=[], seconds=0.0, snapshots={}, epoch_loss=0.0, epoch_n=0)
    saved = load_checkpoint(ckpt, spec, code, device)
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        state = saved["progress"]
        print(f"Resuming {spec.label} at step {state['step']} of {total}")

    def save():
        save_checkpoint(
            ckpt,
            stamp,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler else None,
                "rng": torch.get_rng_state(),
                "progress": state,
            },
        )

    model.train()
    last_save = time.perf_counter()
    for epoch in range(state["step"] // steps_per_epoch, epochs):
        batches = loader.batch_indices(epoch)[: total - epoch * steps_per_epoch]
        done = state["step"] - epoch * steps_per_epoch
        t0 = time.perf_counter()
        bar = tqdm(
            batches[done:],
            desc=f"{spec.name} epoch {epoch + 1}/{epochs}",
            leave=False,
            disable=not progress,
        )
        for index in bar:
            try:
                interrupts.check()
            except interrupts.Stopped:
                state["seconds"] += time.perf_counter() - t0
                save()  # between two steps: the run resumes exactly here
                print(f"{spec.label} stopped at step {state['step']}; checkpoint {ckpt}")
                raise
            batch = loader.make_batch(index)
            x, mask = batch.x.to(device), batch.mask.to(device)
            inputs, labels = _masked(
                x, mask, vocab_size, masking_generator(spec.seed, state["step"]), training
            )
            with torch.autocast(device.type, torch.bfloat16, enabled=autocast):
                loss = model.loss(inputs, mask, labels)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{spec.label}: the loss became {loss.item()} at step {state['step']}. "
                    f"Lower the learning rate (lr={training.lr}); the checkpoint is {ckpt}."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if training.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), training.grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            state["step"] += 1
            state["epoch_loss"] += loss.item()
            state["epoch_n"] += 1
            bar.set_postfix(loss=f"{state['epoch_loss'] / state['epoch_n']:.3f}")
            if time.perf_counter() - last_save > CHECKPOINT_EVERY:
                state["seconds"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                save()
                last_save = t0
        entry = {
            "epoch": epoch + 1,
            "step": state["step"],
            "train_loss": state["epoch_loss"] / max(state["epoch_n"], 1),
        }
        entry.update(heldout_scores(model, text.heldout, vocab_size, device, training))
        state["seconds"] += time.perf_counter() - t0
        entry["seconds"] = state["seconds"]
        state["history"].append(entry)
        state["epoch_loss"], state["epoch_n"] = 0.0, 0
        if epoch + 1 in training.snapshots:
            state["snapshots"][epoch + 1] = half_state(model.state_dict())
        if progress:
            shown = {k: round(v, 4) for k, v in entry.items() if isinstance(v, float)}
            print(f"{spec.name} epoch {epoch + 1}: {shown}", flush=True)
        save()
        last_save = time.perf_counter()
    final = {k: v for k, v in state["history"][-1].items() if k.startswith("heldout")}
    final["steps"] = state["step"]
    final["precision"] = "bfloat16 autocast" if autocast else "float32"
    return {
        "history": state["history"],
        "final": final,
        "seconds": state["seconds"],
        "device": str(device),
        "checkpoint": ckpt,
        "snapshots": state["snapshots"],
    }
