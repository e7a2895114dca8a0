"""Caches tied to their inputs and built under a lock: the IMDB index knows the archive it came
from, refuses a wrong count, and two processes never build it at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
from conftest import TINY_COUNTS, write_tiny_imdb

from tme_lib.data import imdb


def test_an_index_built_from_another_archive_is_built_again(
    tiny_imdb_archive, tmp_path, capsys
):
    imdb.load_index(min_count=1)
    path = next((tmp_path / "cache" / "imdb-index").glob("*/index.npz"))
    with np.load(path) as npz:
        assert json.loads(str(npz["source"]))["size"] == tiny_imdb_archive.stat().st_size
    os.utime(tiny_imdb_archive, ns=(1, 1))  # another copy of the archive in its place
    capsys.readouterr()
    vocab, splits = imdb.load_index(min_count=1)
    said = capsys.readouterr().out
    assert "built from another copy of the IMDB data" in said
    assert len(splits["test"]) == sum(
        n for k, n in TINY_COUNTS.items() if k.startswith("aclImdb/test")
    )


def test_an_index_with_no_test_review_is_refused_and_built_again(tiny_imdb_dir, capsys):
    vocab, splits = imdb.load_index(min_count=1)
    path = next(
        (tiny_imdb_dir.parent.parent / "cache" / "imdb-index").glob("*/index.npz")
    )
    empty = np.zeros(0, np.int32)
    imdb._save_npz(  # what the race once left: the train reviews and no test review
        path,
        vocab=np.array(vocab.itos),
        train_ids=splits["train"].ids,
        train_offsets=splits["train"].offsets,
        train_labels=splits["train"].labels,
        test_ids=empty,
        test_offsets=np.zeros(1, np.int64),
        test_labels=empty.astype(np.float32),
    )
    capsys.readouterr()
    _, again = imdb.load_index(min_count=1)
    assert "holds 0 test reviews" in capsys.readouterr().out
    assert len(again["test"]) == len(splits["test"]) > 0


SCRIPT = textwrap.dedent(
    """
    import sys, time
    from tme_lib.data import imdb
    imdb.COUNTS = {counts!r}
    if sys.argv[1] == "slow":
        build = imdb._build_index
        def slow(*args):
            time.sleep(3)
            return build(*args)
        imdb._build_index = slow
    vocab, splits = imdb.load_index(min_count=1)
    print("test reviews", len(splits["test"]))
    """
)


def test_a_second_process_waits_for_the_index_and_reads_it(tmp_path):
    data = tmp_path / "shared-data"
    write_tiny_imdb(data)
    env = {
        **os.environ,
        "TME_DATA_DIR": str(data),
        "TME_CACHE_DIR": str(tmp_path / "shared-cache"),
    }
    script = tmp_path / "build.py"
    script.write_text(SCRIPT.format(counts=TINY_COUNTS))
    first = subprocess.Popen(
        [sys.executable, str(script), "slow"], env=env, stdout=subprocess.PIPE, text=True
    )
    time.sleep(1.5)  # the first one holds the lock and is "tokenising"
    second = subprocess.run(
        [sys.executable, str(script), "fast"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out_first, _ = first.communicate(timeout=120)
    n = sum(v for k, v in TINY_COUNTS.items() if k.startswith("aclImdb/test"))
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert f"test reviews {n}" in out_first and f"test reviews {n}" in second.stdout
    assert "Another process is building" in second.stdout
    assert "tokenising" not in second.stderr  # it read the index, never built one
