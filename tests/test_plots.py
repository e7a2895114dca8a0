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
    legend = [t.get_text() for t in axes[-1].figure.legends[0].get_texts()]
    assert legend == ["first", "second", "training", "validation"]
    # the kept epoch is marked on the validation curve (a single large marker, in the run's
    # own shape): epoch 2 of "a", epoch 3 of "b"
    kept = [
        (line.get_marker(), line.get_xdata()[0], line.get_ydata()[0])
        for line in axes[-1].lines
        if len(line.get_xdata()) == 1
    ]
    assert kept == [("o", 2, 0.8), ("s", 3, 0.9)]
    # each run has its colour and its marker on every line
    shapes = {line.get_marker() for line in axes[-1].lines if len(line.get_xdata()) > 1}
    assert shapes == {"o", "s"}
    plt.close("all")


def test_learning_curves_without_training_values_have_no_training_entry():
    axes = plot_learning_curves([record("a", [0.6, 0.8], with_train=False)])
    assert [t.get_text() for t in axes[-1].figure.legends[0].get_texts()] == [
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


# --- the course's figure style ------------------------------------------------------------


def test_a_default_figure_of_the_style_is_legible():
    from tme_lib.plots import figure_problems, use_style

    use_style()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="a line")
    ax.set(title="title", xlabel="x", ylabel="y")
    ax.legend()
    assert figure_problems(fig) == []
    plt.close("all")


def test_a_wide_figure_with_small_text_is_illegible_once_shrunk_to_the_column():
    from tme_lib.plots import COLUMN_PX, figure_problems, use_style

    use_style()
    fig, ax = plt.subplots(figsize=(13, 3))  # 1300 px shrunk to the column: about half
    ax.plot([0, 1], [0, 1])
    ax.set_title("tiny", fontsize=8)  # 8 pt = 11 px at full size, about 6 px once shrunk
    problems = figure_problems(fig)
    assert len(problems) == 2 and all("'tiny'" in p for p in problems)
    assert "the column" in problems[0] and "a phone's column" in problems[1]
    # the same text is legible in columns wide enough to show the image at full size
    assert figure_problems(fig, column_px=2000, phone_px=2000) == []
    assert COLUMN_PX < 13 * 100
    plt.close("all")


def test_a_figure_legible_on_a_laptop_can_be_illegible_on_a_phone():
    """8-pt labels on a figure as wide as the laptop's column: 11 px there, under 6 px once a
    390-px phone shrinks the image to its column."""
    from tme_lib.plots import PHONE_COLUMN_PX, figure_problems, use_style

    use_style()
    fig, ax = plt.subplots(figsize=(6.6, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("small", fontsize=8)
    problems = figure_problems(fig)
    assert len(problems) == 1 and "a phone's column" in problems[0], problems
    ax.set_xlabel("small", fontsize=10.5)  # the style's tick size: legible on both
    assert figure_problems(fig) == []
    assert PHONE_COLUMN_PX < 390
    plt.close("all")


def test_more_than_three_panels_in_a_row_and_a_heat_map_without_colour_bar_are_reported():
    import numpy as np

    from tme_lib.plots import figure_problems, use_style

    use_style()
    fig, axes = plt.subplots(1, 4, figsize=(6.4, 2))
    assert any("4 panels in a row" in p for p in figure_problems(fig))
    fig, axes = plt.subplots(2, 2, figsize=(6.4, 5))
    assert figure_problems(fig) == []  # two rows of two
    image = axes[0, 0].imshow(np.eye(3))
    assert any("colour bar" in p for p in figure_problems(fig))
    fig.colorbar(image, ax=axes)
    assert figure_problems(fig) == []  # the colour bar is not counted as a panel
    plt.close("all")


def test_check_figures_names_the_figure_that_breaks_the_style():
    import pytest

    from tme_lib import plots

    plots.use_style()
    plots._kept.clear()
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    plots.check_figures()  # one legible figure: no error
    fig, ax = plt.subplots(figsize=(14, 3))
    ax.set_title("the wide one", fontsize=7)
    with pytest.raises(AssertionError, match="figure 2 \\(the wide one\\)"):
        plots.check_figures()
    plots._kept.clear()
    plt.close("all")


def test_the_shared_plots_follow_the_style():
    from tme_lib.plots import figure_problems, plot_entropy_histograms, use_style

    use_style()
    runs = [record(f"run {i}", [0.6, 0.7, 0.8, 0.85]) for i in range(3)]
    axes = plot_learning_curves(runs)
    assert figure_problems(axes[0].figure) == []
    history = [
        {"train_entropy_sample": [1.0, 2.0 + e], "val_entropy_sample": [1.5, 2.5]}
        for e in range(10)
    ]
    axes = plot_entropy_histograms(SimpleNamespace(name="r", history=history))
    assert axes.shape == (2, 3)  # three epochs by default: first, middle, last
    assert [ax.get_title() for ax in axes[0]] == [
        "train, epoch 1",
        "train, epoch 6",
        "train, epoch 10",
    ]
    assert figure_problems(axes[0][0].figure) == []
    plt.close("all")
