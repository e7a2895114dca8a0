"""Figures shared by the chapters, and the one figure style of the course.

Each plotting function draws from run records, never from a new run. The style
(:func:`use_style`, called by the first cell of every notebook) fixes the resolution and the
font sizes; :func:`figure_problems` checks a drawn figure against the book's column at a laptop
width and at a phone width: its smallest text must stay at least ``MIN_FONT_PX`` CSS pixels
tall once the image is shrunk to the laptop's column, and ``MIN_PHONE_FONT_PX`` once shrunk to
the phone's (where a tap also opens it at full size, ``book/_static/figures.js``); a row
holds at most ``MAX_PANELS_PER_ROW`` panels, and an image (a heat map) comes with a colour
bar. The last cell of every notebook calls :func:`check_figures` on every figure
the notebook drew, so the notebook tests fail on an illegible figure.
"""

from __future__ import annotations

import itertools

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cycler
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator

# Width (CSS px) of a cell's output in the book at a 1280-px window and at a 390-px phone
# (measured by the browser tests), the resolution of the figures (matplotlib's default, and the
# inline backend's) and the smallest legible text once a wider image is shrunk to each column.
COLUMN_PX = 672
PHONE_COLUMN_PX = 342
DPI = 100
MIN_FONT_PX = 9.0
MIN_PHONE_FONT_PX = 7.0
MAX_PANELS_PER_ROW = 3
# Okabe and Ito's colour-blind-safe palette (black last), and one marker per line, so that
# models are told apart by shape as well as by colour.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00")
PALETTE += ("#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
STYLE = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.figsize": (6.4, 3.6),
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "xtick.labelsize": 10.5,
    "ytick.labelsize": 10.5,
    "legend.fontsize": 10.5,
    "figure.titlesize": 12,
    "grid.alpha": 0.3,  # line plots call ax.grid(); heat maps stay without grid lines
    "image.cmap": "magma",
    "axes.prop_cycle": cycler(color=PALETTE),
}
# The figures drawn since the last check, numbered in the order the session drew them, for
# check_figures (pyplot forgets them once shown).
_kept: list = []
_drawn = itertools.count(1)


def _keep(fig) -> None:
    _kept.append((next(_drawn), fig))


def use_style() -> None:
    """Apply the course's figure style and keep every new figure, numbered from 1, for
    :func:`check_figures`."""
    global _drawn
    _drawn = itertools.count(1)
    _kept.clear()
    mpl.rcParams.update(STYLE)
    hook = f"{__name__}:_keep"
    if hook not in mpl.rcParams["figure.hooks"]:
        mpl.rcParams["figure.hooks"] = [*mpl.rcParams["figure.hooks"], hook]


def _is_colorbar(ax) -> bool:
    return ax.get_label() == "<colorbar>"


def figure_problems(
    fig, column_px: float = COLUMN_PX, phone_px: float = PHONE_COLUMN_PX
) -> list[str]:
    """What makes ``fig`` illegible in the book's column (empty when nothing does): text under
    ``MIN_FONT_PX`` once the saved image (tight bounding box) is shrunk to ``column_px``, more
    than ``MAX_PANELS_PER_ROW`` panels in a row, an image without a colour bar."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # a figure closed by the notebook's backend has lost its canvas: draw it with Agg
    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    width_px = fig.get_tightbbox(renderer).width * fig.dpi
    problems = []
    texts = [
        t
        for t in fig.findobj(Text)
        if t.get_visible()
        and t.get_text().strip()
        and t.get_window_extent(renderer).width
    ]
    if texts:
        smallest = min(texts, key=lambda t: t.get_fontsize())
        for where, column, least in (
            ("the column", column_px, MIN_FONT_PX),
            ("a phone's column", phone_px, MIN_PHONE_FONT_PX),
        ):
            px = smallest.get_fontsize() * fig.dpi / 72 * min(1.0, column / width_px)
            if px < least:
                problems.append(
                    f"text {smallest.get_text()[:30]!r} is {px:.1f} px tall in {where} "
                    f"(image {width_px:.0f} px wide, shrunk to {column:.0f} px): use a "
                    f"narrower figure or a larger font (at least {least:g} px)"
                )
    panels = [ax for ax in fig.axes if ax.get_visible() and not _is_colorbar(ax)]
    rows: dict[int, int] = {}
    for ax in panels:
        box = ax.get_position()
        key = round((box.y0 + box.y1) / 2, 2)
        rows[key] = rows.get(key, 0) + 1
    if rows and max(rows.values()) > MAX_PANELS_PER_ROW:
        problems.append(
            f"{max(rows.values())} panels in a row (at most {MAX_PANELS_PER_ROW}): wrap them"
        )
    if any(ax.images for ax in panels) and not any(_is_colorbar(ax) for ax in fig.axes):
        problems.append(
            "a heat map without a colour bar: add fig.colorbar(image, ax=...)"
        )
    return problems


def check_figures() -> None:
    """Raise if a figure drawn since :func:`use_style` (or the last check) breaks the style
    (the last cell of each notebook calls it); the message lists each figure's problems. The
    figures checked are then forgotten, so a long session does not keep them all."""
    found = []
    for number, fig in _kept:
        title = fig._suptitle.get_text() if fig._suptitle else ""
        axes_titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        name = title or (axes_titles[0] if axes_titles else "untitled")
        found += [f"figure {number} ({name}): {p}" for p in figure_problems(fig)]
    checked = len(_kept)
    _kept.clear()
    if found:
        raise AssertionError(
            "figures that break the course's style:\n" + "\n".join(found)
        )
    print(f"{checked} figures checked against a {COLUMN_PX}-px column: all legible.")


def plot_learning_curves(records, labels=None, metric: str = "acc", axes=None):
    """Training and validation loss, and ``metric`` (``acc`` or ``r2``), per epoch, one line
    per run.

    Solid lines are training, dashed lines validation; each run has its colour and its
    marker (:data:`PALETTE`, :data:`MARKERS`), and a larger marker shows the epoch kept (best
    on validation).
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(6.6, 3.0))
    labels = labels or [r.name for r in records]
    has_train = False
    styles = list(zip(PALETTE * 3, MARKERS * 3))
    for record, label, (color, marker) in zip(records, labels, styles):
        epochs = [e["epoch"] for e in record.history]
        best = record.final.get("best_epoch")
        line = dict(color=color, marker=marker, ms=3.5)
        for ax, key in zip(axes, ("loss", metric)):
            train = [e.get(f"train_{key}") for e in record.history]
            val = [e.get(f"val_{key}") for e in record.history]
            if any(v is not None for v in train):
                ax.plot(epochs, train, **line, label=f"{label} (train)")
                has_train = True
            ax.plot(epochs, val, **line, ls="--", label=f"{label} (validation)")
            if best:
                ax.plot(best, val[best - 1], marker, color=color, ms=8, mfc="none")
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
        Line2D([], [], color=color, marker=marker, label=label)
        for label, (color, marker) in zip(labels, styles)
    ]
    handles += [Line2D([], [], color="grey", label="training")] if has_train else []
    handles += [Line2D([], [], color="grey", ls="--", label="validation")]
    # Below the two panels, so that the figure keeps the column's width.
    fig = axes[-1].figure
    fig.tight_layout()
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(3, len(handles)),
    )
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
    defaults to three epochs spread over the run (first, middle, last); ``reference`` (e.g.
    the mean ``log n`` of uniform attention, or 1 when normalised) is drawn as a vertical line.
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
            {
                round(x)
                for x in np.linspace(
                    1, len(history), min(MAX_PANELS_PER_ROW, len(history))
                )
            }
        )
    fig, axes = plt.subplots(
        len(splits),
        len(epochs),
        figsize=(2.3 * len(epochs), 2.0 * len(splits)),
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
            ax.set_title(f"{'validation' if split == 'val' else split}, epoch {epoch}")
        row[0].set_ylabel("reviews")
    for ax in axes[-1]:
        ax.set_xlabel("entropy / log n" if normalised else "entropy (nats)")
    fig.suptitle(f"Attention entropy per epoch: {record.name}")
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


def plot_lambda_curves(records, labels=None, ax=None):
    """Validation accuracy (%) of the fusion ``z_NB + λ·z_att`` against ``λ``, one line per
    fusion record (chapter "Beyond the bag of words"), each with its colour, line style and
    marker; a large marker shows the chosen ``λ``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.4))
    for k, record in enumerate(records):
        lams = [h["lambda"] for h in record.history]
        acc = [100 * h["val_acc"] for h in record.history]
        label = labels[k] if labels else record.name
        marker, style = MARKERS[k % len(MARKERS)], ("-", "--", "-.", ":")[k % 4]
        (line,) = ax.plot(
            lams, acc, ls=style, marker=marker, markevery=5, ms=4, label=label
        )
        chosen = record.final["lambda"]
        ax.plot(
            [chosen],
            [100 * record.final["val_acc"]],
            marker,
            color=line.get_color(),
            ms=8,
        )
    ax.axhline(
        100 * records[0].final["nb_val_acc"],
        color="0.4",
        ls=":",
        lw=1,
        label="NB bigrams alone (λ = 0)",
    )
    ax.set_xlabel("λ, weight of the attention model's logit")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(True)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    plt.tight_layout()
    return ax


def plot_word_evidence(tokens, nb_weights, attention, title: str = ""):
    """One review, word by word from top to bottom: what each word adds to the NB-bigram logit
    (``w_j·r_j`` of its unigram; blue pushes towards positive, orange towards negative) next to
    the attention weight the attention model gives it."""
    n = len(tokens)
    if not (len(nb_weights) == len(attention) == n):
        raise ValueError(
            f"{n} tokens, {len(nb_weights)} NB weights, {len(attention)} attention weights"
        )
    fig, (left, right) = plt.subplots(1, 2, figsize=(6.4, 0.9 + 0.19 * n), sharey=True)
    y = np.arange(n)
    colours = ["tab:blue" if w > 0 else "tab:orange" for w in nb_weights]
    left.barh(y, nb_weights, color=colours)
    left.axvline(0, color="0.3", lw=0.8)
    left.set_yticks(y, tokens)
    left.invert_yaxis()
    left.set_xlabel("NB word weight w·r")
    right.barh(y, attention, color="tab:red")
    right.set_xlabel("attention weight")
    for ax in (left, right):
        ax.grid(True, axis="x")
    if title:
        fig.suptitle(title)
    plt.tight_layout()
    return fig
