"""Figures shared by the chapters. Each function draws from run records, never from a new run."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator


def plot_learning_curves(records, labels=None, metric: str = "acc", axes=None):
    """Training and validation loss, and ``metric`` (``acc`` or ``r2``), per epoch, one line
    per run.

    Solid lines are training, dashed lines validation; a dot marks the epoch kept (best on
    validation).
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    labels = labels or [r.name for r in records]
    has_train = False
    for record, label, color in zip(records, labels, plt.cm.tab10.colors * 3):
        epochs = [e["epoch"] for e in record.history]
        best = record.final.get("best_epoch")
        for ax, key in zip(axes, ("loss", metric)):
            train = [e.get(f"train_{key}") for e in record.history]
            val = [e.get(f"val_{key}") for e in record.history]
            if any(v is not None for v in train):
                ax.plot(epochs, train, color=color, label=f"{label} (train)")
                has_train = True
            ax.plot(epochs, val, color=color, ls="--", label=f"{label} (validation)")
            if best:
                ax.plot(best, val[best - 1], "o", color=color)
    names = {"loss": "loss", "acc": "accuracy", "r2": "R²"}
    for ax, key in zip(axes, ("loss", metric)):
        ax.set(
            xlabel="epoch",
            ylabel=names.get(key, key),
            title=f"{names.get(key, key).capitalize()} per epoch",
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
    # One legend entry per run (its colour) and one per line style, beside the axes.
    handles = [
        Line2D([], [], color=color, label=label)
        for label, color in zip(labels, plt.cm.tab10.colors * 3)
    ]
    handles += [Line2D([], [], color="grey", label="training")] if has_train else []
    handles += [Line2D([], [], color="grey", ls="--", label="validation")]
    axes[-1].legend(
        handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5)
    )
    plt.tight_layout()
    return axes


def plot_entropy_histograms(
    record,
    splits=("train", "val"),
    epochs=None,
    reference=None,
    bins=30,
    normalised: bool = False,
):
    """Histograms of per-example attention entropy, one column per epoch, one row per split,
    from the samples the trainer records each epoch (``<split>_entropy_sample``: the same fixed
    reviews every epoch when the run has a probe).

    ``normalised`` draws ``H / log n`` instead of ``H`` (nats): 1 is uniform attention over the
    review, 0 all of it on one token, whatever the review's length. ``epochs`` (1-based)
    defaults to about five epochs spread over the run; ``reference`` (e.g. the mean ``log n``
    of uniform attention, or 1 when normalised) is drawn as a vertical line.
    """
    import numpy as np

    key = "entropy_norm_sample" if normalised else "entropy_sample"
    history = record.history
    if not history or f"{splits[0]}_{key}" not in history[0]:
        raise ValueError(
            f"{record.name} has no attention entropies (a model without attention?)."
        )
    if epochs is None:
        epochs = sorted(
            {round(x) for x in np.linspace(1, len(history), min(5, len(history)))}
        )
    fig, axes = plt.subplots(
        len(splits),
        len(epochs),
        figsize=(2.6 * len(epochs), 2.2 * len(splits)),
        sharex=True,
        sharey="row",
        squeeze=False,
    )
    values = [v for e in history for s in splits for v in e[f"{s}_{key}"]]
    edges = np.linspace(min(values), max(values), bins + 1)
    for row, split in zip(axes, splits):
        for ax, epoch in zip(row, epochs):
            sample = history[epoch - 1][f"{split}_{key}"]
            ax.hist(sample, bins=edges, color="C0" if split == "train" else "C1")
            if reference is not None:
                ax.axvline(reference, color="k", ls=":", lw=1)
            ax.set_title(
                f"{'validation' if split == 'val' else split}, epoch {epoch}", fontsize=9
            )
        row[0].set_ylabel("reviews")
    for ax in axes[-1]:
        ax.set_xlabel("entropy / log n" if normalised else "entropy (nats)")
    fig.suptitle(f"Attention entropy per epoch: {record.name}", fontsize=10)
    plt.tight_layout()
    return axes


def show_attention_text(tokens, weights, top: int = 10, title: str = ""):
    """A review as HTML whose words are shaded by their attention weight (darkest = most
    attended), followed by its ``top`` most attended words. Returns an ``IPython.display.HTML``."""
    from html import escape

    from IPython.display import HTML

    if len(tokens) != len(weights):
        raise ValueError(f"{len(tokens)} tokens but {len(weights)} weights")
    peak = max(float(max(weights)), 1e-12)
    spans = [
        f'<span style="background: rgba(220, 50, 32, {float(w) / peak:.3f})">{escape(t)}</span>'
        for t, w in zip(tokens, weights)
    ]
    order = sorted(range(len(tokens)), key=lambda i: -float(weights[i]))[:top]
    best = ", ".join(f"{escape(tokens[i])} ({float(weights[i]):.2f})" for i in order)
    head = f"<b>{escape(title)}</b><br>" if title else ""
    return HTML(
        f'<div style="line-height: 1.8">{head}{" ".join(spans)}'
        f"<br><i>most attended:</i> {best}</div>"
    )
