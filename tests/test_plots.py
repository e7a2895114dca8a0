"""Tests of the shared figures (tme_lib/plots.py), drawn from hand-made records."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tme_lib.plots import plot_learning_curves  # noqa: E402


def record(name, val_acc, with_train=True):
    history = [
        {
            "epoch": e + 1,
            "val_loss": 1 - a,
            "val_acc": a,
            **({"train_loss": 0.9 - a, "train_acc": a + 0.01} if with_train else {}),
        }
        for e, a in enumerate(val_acc)
    ]
    best = max(range(len(val_acc)), key=val_acc.__getitem__) + 1
    return SimpleNamespace(name=name, history=history, final={"best_epoch": best})


def test_learning_curves_legend_names_runs_and_line_styles():
    runs = [record("a", [0.6, 0.8, 0.7]), record("b", [0.5, 0.6, 0.9])]
    axes = plot_learning_curves(runs, ["first", "second"])
    legend = [t.get_text() for t in axes[-1].get_legend().get_texts()]
    assert legend == ["first", "second", "training", "validation"]
    # the kept epoch is marked on the validation curve: epoch 2 of "a", epoch 3 of "b"
    dots = [
        (line.get_xdata()[0], line.get_ydata()[0])
        for line in axes[-1].lines
        if line.get_marker() == "o"
    ]
    assert dots == [(2, 0.8), (3, 0.9)]
    plt.close("all")


def test_learning_curves_without_training_values_have_no_training_entry():
    axes = plot_learning_curves([record("a", [0.6, 0.8], with_train=False)])
    assert [t.get_text() for t in axes[-1].get_legend().get_texts()] == [
        "a",
        "validation",
    ]
    plt.close("all")


def test_entropy_histograms_draw_the_normalised_entropy_on_request():
    from tme_lib.plots import plot_entropy_histograms

    history = [
        {
            "train_entropy_sample": [1.0, 2.0],
            "val_entropy_sample": [1.5, 2.5],
            "train_entropy_norm_sample": [0.5, 0.9],
            "val_entropy_norm_sample": [0.6, 1.0],
        }
        for _ in range(3)
    ]
    run = SimpleNamespace(name="r", history=history)
    axes = plot_entropy_histograms(run, normalised=True, reference=1.0)
    assert axes[-1][0].get_xlabel() == "entropy / log n"
    assert axes[0][0].get_xlim()[1] <= 1.1  # the normalised values, not the nats
    plt.close("all")
    axes = plot_entropy_histograms(run)
    assert (
        axes[-1][0].get_xlabel() == "entropy (nats)" and axes[0][0].get_xlim()[1] >= 2.4
    )
    plt.close("all")
