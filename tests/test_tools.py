"""Maintenance tools: the results page is generated from the tables, notebook pairs agree."""

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import check_pairs  # noqa: E402
import make_results_page  # noqa: E402


def test_results_page_is_up_to_date():
    page = (ROOT / "book" / "results.md").read_text()
    assert page == make_results_page.render(), "run: python tools/make_results_page.py"


def test_cost_table_is_up_to_date_and_covers_every_chapter():
    text = (ROOT / "book" / "_generated" / "costs.md").read_text()
    assert text == make_results_page.costs_table(), (
        "run: python tools/make_results_page.py"
    )
    for notebook in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        assert f"notebooks/{notebook.stem}" in text


def test_results_page_shows_mean_and_sd_over_seeds(tmp_path):
    import pandas as pd

    csv = tmp_path / "t.csv"
    pd.DataFrame(
        {
            "model": ["baseline"] * 3,
            "optimizer": ["adam"] * 3,
            "seed": [0, 1, 2],
            "epochs": [5, 5, 5],
            "test_acc": [0.80, 0.82, 0.84],
            "mean_entropy": [None] * 3,
            "seconds": [10, 10, 10],
            "device": ["cpu (x, 1 threads)"] * 3,
        }
    ).to_csv(csv, index=False)
    table = make_results_page.classification_table(
        csv, make_results_page.REPORT_TME9, ["model", "optimizer"]
    )
    # mean ± sd on one line (no-break spaces), the report's number beside it
    assert "82.00\u00a0±\u00a02.00" in table and "74.03" in table
    # one device for every run: a sentence, not a column
    assert "| device |" not in table and table.endswith("in this table: cpu.")


def test_results_page_keeps_the_device_column_when_devices_differ(tmp_path):
    import pandas as pd

    csv = tmp_path / "t.csv"
    pd.DataFrame(
        {
            "model": ["baseline", "attention_simple"],
            "optimizer": ["adam"] * 2,
            "seed": [0, 0],
            "epochs": [5, 5],
            "test_acc": [0.8, 0.84],
            "mean_entropy": [None, 4.0],
            "seconds": [10, 3],
            "device": ["cpu (x, 1 threads)", "cuda (H100)"],
        }
    ).to_csv(csv, index=False)
    table = make_results_page.classification_table(csv, {}, ["model", "optimizer"])
    assert "| device |" in table and "| cuda |" in table and "in this table" not in table


def test_pair_checker_spots_an_edited_source(tmp_path):
    import jupytext

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    jupytext.write(nb, tmp_path / "a.ipynb")
    jupytext.write(nb, tmp_path / "a.py", fmt="py:percent")
    assert check_pairs.out_of_sync(tmp_path) == []
    (tmp_path / "a.py").write_text(
        (tmp_path / "a.py").read_text().replace("x = 1", "x = 2")
    )
    assert check_pairs.out_of_sync(tmp_path) == [
        "a: cell 1 differs (1 cells in .py, 1 in .ipynb)"
    ]


def test_notebooks_are_paired():
    assert check_pairs.out_of_sync(ROOT / "notebooks") == []


def test_book_notebooks_show_full_profile_outputs_without_errors_or_training_logs():
    """The committed notebooks are the book's pages: executed top to bottom in the full profile
    (``make full``), every cell run, no error, no traceback, no training log (the runs are loaded
    from their records, never retrained while the book is made)."""
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        code = [
            c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
        ]
        assert all(c.execution_count is not None for c in code), (
            f"{path.name}: unexecuted cells"
        )
        outputs = [o for c in code for o in c.get("outputs", [])]
        texts = [o.get("text", "") for o in outputs if o.output_type == "stream"]
        assert not [o for o in outputs if o.output_type == "error"], (
            f"{path.name}: error output"
        )
        assert "profile: full" in "".join(texts[:2]), (
            f"{path.name}: not run in the full profile"
        )
        for text in texts:
            assert "Traceback" not in text, f"{path.name}: traceback in an output"
            assert " epoch 1: {" not in text and "it/s]" not in text, (
                f"{path.name}: a training log in the book; run the training script, then make full"
            )


# Characters of printed output that fit the book's column (code font of book/_static/custom.css).
OUTPUT_WIDTH = 92


def test_printed_outputs_fit_the_book_column():
    """A longer line of printed text makes its output box scroll sideways in the book: wrap it
    (``textwrap.fill``) or print it in parts."""
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") != "stream":
                    continue
                long = [
                    line
                    for line in output["text"].splitlines()
                    if len(line) > OUTPUT_WIDTH
                ]
                assert not long, f"{path.name}: output wider than the book:\n{long[0]}"


def test_every_figure_of_the_book_has_a_caption():
    """A cell that draws a figure carries ``mystnb.figure.caption`` (written in the ``.py`` cell
    header), so the book shows the figure with a caption."""
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            images = [
                o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})
            ]
            if images:
                assert len(images) == 1, (
                    f"{path.name}: one figure per cell, so each has its caption"
                )
                caption = (
                    cell.metadata.get("mystnb", {}).get("figure", {}).get("caption", "")
                )
                assert len(caption) > 20, (
                    f"{path.name}: a figure without a caption:\n{cell.source[:120]}"
                )


def test_gpu_check_runs_on_the_cpu_and_writes_one_row_per_model(tmp_path, monkeypatch):
    import importlib.util

    import pandas as pd

    spec = importlib.util.spec_from_file_location(
        "gpu_check", ROOT / "tools" / "gpu_check.py"
    )
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    out = tmp_path / "gpu_check.csv"
    argv = [
        "--device",
        "cpu",
        "--profile",
        "smoke",
        "--steps",
        "1",
        "--chapters",
        "data",
        "tme10",
        "pretraining",
        "--out",
        str(out),
    ]
    assert gpu_check.main(argv) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == gpu_check.COLUMNS
    from tme_lib.chapters import tme10

    assert set(table["model"]) == {
        "baseline",
        *tme10.VARIANTS,
        "masked_lm",
        "replaced_token",
        "classifier",
    }
    assert (table["examples_per_s"] > 0).all() and table["device"].str.startswith(
        "cpu"
    ).all()


def test_committed_notebooks_carry_no_widget_state():
    """Widget state makes the book load require.js and the widget manager from a CDN."""
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert "widgets" not in nb.metadata, path.name
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                assert "application/vnd.jupyter.widget-view+json" not in out.get(
                    "data", {}
                )


def test_executed_notebooks_keep_no_progress_bar():
    import importlib.util

    import nbformat

    spec = importlib.util.spec_from_file_location(
        "execute_notebooks", ROOT / "tools" / "execute_notebooks.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("load()")
    cell.outputs = [
        nbformat.v4.new_output(
            "stream", name="stderr", text="tokenising train:   0%|  | 0/25000"
        ),
        nbformat.v4.new_output("stream", name="stdout", text="25,000 reviews\n"),
        nbformat.v4.new_output("stream", name="stderr", text="a warning\n"),
    ]
    nb.cells = [cell]
    assert tool.drop_progress_bars(nb) == 1
    assert [o["text"] for o in nb.cells[0].outputs] == ["25,000 reviews\n", "a warning\n"]
    import os
    import subprocess
    import sys

    # what the tool sets for the kernel, which reads it when it imports tqdm
    probe = "import tqdm.auto; print(tqdm.auto.tqdm(range(3)).disable)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "TQDM_DISABLE": "1"},
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "True"


def test_pretraining_results_keep_the_arms_and_leave_out_choices_not_chosen(tmp_path):
    import pandas as pd

    csv = tmp_path / "pretraining.csv"
    rows = [("scratch", 0, "cls", 1e-3, seed, 0.88 + 0.01 * seed) for seed in range(3)]
    rows += [("scratch", 0, "mean", 3e-4, 0, 0.99)]  # a choice run that was not chosen
    rows += [("pretrained", 24, "mean", 1e-4, seed, 0.90) for seed in range(3)]
    pd.DataFrame(
        rows, columns=["arm", "pretraining_epoch", "pooling", "lr", "seed", "test_acc"]
    ).to_csv(csv, index=False)
    table = make_results_page.pretraining_table(csv)
    assert "99.00" not in table and "0.0003" not in table
    assert "89.00 ± 1.00" in table and "90.00 ± 0.00" in table
