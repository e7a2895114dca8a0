"""Inputs and faults: nothing corrupt is trusted, every bad input gets a message that names it.

Each test builds its damaged input itself: byte flips and truncations of an archive, a wrong
gzip CRC, extra and missing members, bad review files, bad CSV lines, very long sequences, a
diverging run, and processes killed in the middle of an extraction or of a training run."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_tiny_imdb
from test_train import BagOfTokens, make_loaders, make_spec

from tme_lib import config
from tme_lib.blocks import attention
from tme_lib.chapters.aptamers import energy, sequences
from tme_lib.config import DataError
from tme_lib.data import download, imdb
from tme_lib.training import records, trainer

ROOT = Path(__file__).resolve().parent.parent


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.startswith((".imdb", "imdb")))


def repack(
    tree_root: Path,
    archive: Path,
    extra: dict[str, str] | None = None,
    drop: str | None = None,
) -> Path:
    """Write ``aclImdb/`` of ``tree_root`` as a tar.gz, with extra members or one left out."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted((tree_root / "aclImdb").rglob("*")):
            name = str(path.relative_to(tree_root))
            if drop and name == drop:
                continue
            tar.add(path, arcname=name, recursive=False)
        for name, text in (extra or {}).items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def flip(path: Path, at: float, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    start = min(int(at * len(data)), len(data) - n)
    for i in range(start, start + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("at", [0.1, 0.5, 0.85])
def test_a_byte_flip_anywhere_is_caught_and_nothing_is_trusted(
    tiny_imdb_archive, isolated_folders, at
):
    cache, _ = isolated_folders
    flip(tiny_imdb_archive, at)
    with pytest.raises(DataError, match=r"aclImdb_v1\.tar\.gz.*(corrupt|extracted)"):
        imdb.imdb_root()
    assert leftovers(cache) == []


def test_a_single_byte_near_the_end_is_caught_by_the_gzip_crc(
    tiny_imdb_archive, isolated_folders
):
    """The archive's last review altered: tar reads a valid file, only the CRC tells."""
    data = bytearray(gzip.decompress(tiny_imdb_archive.read_bytes()))
    body = bytes(data)
    index = body.rfind(b"boring and awful")
    assert index > 0
    data[index] = ord("B")
    compressed = bytearray(gzip.compress(bytes(data)))
    good_crc = gzip.compress(body)[-8:-4]
    compressed[-8:-4] = good_crc  # the CRC of the original content: a silent alteration
    tiny_imdb_archive.write_bytes(bytes(compressed))
    with pytest.raises(DataError, match="gzip stream does not check out"):
        imdb.imdb_root()
    assert leftovers(isolated_folders[0]) == []


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.99])
def test_a_truncated_archive_is_refused(tiny_imdb_archive, isolated_folders, keep):
    content = tiny_imdb_archive.read_bytes()
    tiny_imdb_archive.write_bytes(content[: int(keep * len(content))])
    with pytest.raises(DataError, match="corrupt"):
        imdb.imdb_root()
    assert leftovers(isolated_folders[0]) == []


def test_extra_or_missing_members_fail_the_counts(isolated_folders, tmp_path):
    _, data = isolated_folders
    tree = tmp_path / "tree"
    write_tiny_imdb(tree)
    archive = data / "aclImdb_v1.tar.gz"
    repack(tree, archive, extra={"aclImdb/train/pos/99_9.txt": "an extra review"})
    with pytest.raises(DataError, match=r"train/pos: 5 files, expected 4"):
        imdb.imdb_root()
    repack(tree, archive, drop="aclImdb/train/unsup/1_2.txt")
    with pytest.raises(DataError, match=r"train/unsup: 1 files, expected 2"):
        imdb.imdb_root()
    assert leftovers(isolated_folders[0]) == []


def test_the_official_archive_is_trusted_without_the_full_gzip_read(
    tiny_imdb_archive, monkeypatch
):
    monkeypatch.setattr(imdb, "SHA256", download.sha256sum(tiny_imdb_archive))

    def no_read(path):
        raise AssertionError("an archive with the official hash was read again")

    monkeypatch.setattr(download, "verify_gzip", no_read)
    root = imdb.imdb_root()
    marker = json.loads((root.parent / download.MARKER).read_text())
    assert marker["trusted"] and marker["sha256"] == imdb.SHA256


def test_the_marker_records_what_was_verified_and_a_new_archive_is_verified_again(
    tiny_imdb_archive, isolated_folders, tmp_path
):
    root = imdb.imdb_root()
    marker = json.loads((root.parent / download.MARKER).read_text())
    assert not marker["trusted"] and "gzip" in marker["verified"][0]
    assert (
        marker["counts"] == imdb.COUNTS
        and marker["size"] == tiny_imdb_archive.stat().st_size
    )
    # another archive in its place (here: a damaged one) is not covered by the old marker
    flip(tiny_imdb_archive, 0.5)
    os.utime(tiny_imdb_archive, ns=(1, 1))
    with pytest.raises(DataError):
        imdb.imdb_root()
    # the damaged archive was verified before anything was removed: the old extraction stays,
    # never used for this archive (its marker names the old one)
    assert leftovers(isolated_folders[0]) == ["imdb"]
    assert not download.extraction_is_current(root.parent, tiny_imdb_archive)
    # the good archive back: extracted and verified again, complete
    repack(write_tiny_imdb(tmp_path / "again").parent, tiny_imdb_archive)
    root = imdb.imdb_root()
    assert download.count_files(root.parent, imdb.COUNTS) == imdb.COUNTS


def test_stale_temporary_folders_are_removed_live_ones_kept(
    tiny_imdb_archive, isolated_folders
):
    cache, _ = isolated_folders
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    stale, live = cache / ".imdb-stale", cache / ".imdb-live"
    for folder, pid in ((stale, dead), (live, str(os.getpid()))):
        (folder / "aclImdb").mkdir(parents=True)
        (folder / download.OWNER).write_text(pid)
    imdb.imdb_root()
    assert not stale.exists() and live.exists()


def test_a_missing_data_folder_is_named_as_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("TME_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"TME_DATA_DIR=.*nowhere is missing"):
        config.data_dir()


def test_bad_review_files_are_named(tiny_imdb_dir, monkeypatch):
    monkeypatch.setenv("TME_PROFILE", "full")
    bad = tiny_imdb_dir / "train" / "pos" / "0_7.txt"
    bad.write_bytes("A great film\nsecond line \xff".encode("latin-1"))
    with pytest.raises(DataError, match=r"0_7\.txt, line 2: not valid UTF-8"):
        imdb.load_imdb(min_count=1)
    bad.write_text("fixed", encoding="utf-8")
    (tiny_imdb_dir / "train" / "neg" / "notes.txt").write_text("my notes")
    with pytest.raises(DataError, match=r"notes\.txt is not a review file"):
        imdb.load_imdb(min_count=1)


def test_a_damaged_glove_line_is_named(isolated_folders, tiny_glove):
    from tme_lib.data import vectors
    from tme_lib.data.text import Vocab

    path = isolated_folders[1] / "glove.6B.50d.txt"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit(" ", 3)[0]  # "awful": 47 numbers instead of 50
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError, match=r"glove\.6B\.50d\.txt, line 3: expected a word and 50"
    ):
        vectors.load_vectors(Vocab(["<pad>", "<oov>", "awful"]), source="glove")


# --- Very long sequences ---------------------------------------------------------------------


def test_self_attention_refuses_sequences_beyond_the_bound():
    layer = attention.MultiHeadAttention(8, n_heads=2)
    with pytest.raises(ValueError, match=f"at most {attention.MAX_LENGTH}"):
        layer(torch.zeros(1, attention.MAX_LENGTH + 1, 8))
    with pytest.raises(ValueError, match=f"at most {attention.MAX_LENGTH}"):
        attention.distance_bias(100_000, 0.25)


def test_keeping_weights_beyond_the_memory_bound_is_refused_with_the_memory(monkeypatch):
    monkeypatch.setattr(attention, "MAX_SCORE_BYTES", 1024**2)
    layer = attention.MultiHeadAttention(8, n_heads=2)
    x = torch.zeros(4, 400, 8)
    with pytest.raises(ValueError, match=r"needs 4\.9 MiB, above the bound of 1\.0 MiB"):
        layer(x, need_weights=True)
    out, weights = layer(x, need_weights=False)  # the fused path keeps no weights
    assert weights is None and out.shape == x.shape


# --- Aptamer inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ("seq,target\nACGT,1\n", "line 1: header"),
        ("sequence,target\n", "no strand"),
        ("sequence,target\nACGT,1,extra\n", "line 2: 3 fields"),
        ("sequence,target\nACGT\n", "line 2: 1 fields"),
        ("sequence,target\nACGT,\n", "line 2, column 'target': the value is missing"),
        ("sequence,target\nACGT,inf\n", "line 2, column 'target': 'inf' is not a finite"),
        ("sequence,target\nACGT,nan\n", "line 2, column 'target': 'nan' is not a finite"),
        ("sequence,target\nACGT, 1.5\n", "line 2, column 'target': ' 1.5' has spaces"),
        (
            "sequence,target\nACGT,1\n ACG,2\n",
            "line 3, column 'sequence': ' ACG' has spaces",
        ),
        (
            "sequence,target\nACGT,1\nACGN,2\n",
            "column 'sequence', line 3: 'ACGN' has letter 'N'",
        ),
    ],
)
def test_every_malformed_csv_names_line_column_and_value(tmp_path, content, message):
    path = tmp_path / "mine.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        sequences.load_csv(path, length=4)


def test_an_empty_strand_is_rejected_before_viennarna():
    with pytest.raises(ValueError, match="row 0: an empty strand"):
        energy.label([""], processes=1, progress=False)
    with pytest.raises(ValueError, match="row 1"):
        energy.label(["ACGT", ""], processes=1, progress=False)


def test_labelling_from_an_unguarded_script_fails_fast_with_advice(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent("""
        from tme_lib.chapters.aptamers.energy import label
        print(label(["ACGTACGTAC"] * 8, processes=2, chunk=2, progress=False))
    """)
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode != 0
    assert 'if __name__ == "__main__":' in out.stderr


# --- Training ---------------------------------------------------------------------------------


class Exploding(BagOfTokens):
    """Finite but ever larger logits: the loss grows without becoming inf or NaN."""

    def forward(self, x, mask):
        logit, w = super().forward(x, mask)
        self.scale = getattr(self, "scale", 1.0) * 50.0
        return logit * 0 + self.scale * (1 - 2 * (x[:, 0] % 2)), w


def test_a_diverging_run_stops_and_records_nothing(capsys):
    spec = make_spec(chapter="faults", name="diverges", epochs=5)
    with pytest.raises(FloatingPointError, match="diverged and nothing was recorded"):
        records.load_or_train(
            spec, Exploding, make_loaders(), device="cpu", progress=False
        )
    assert records.find_record(spec) is None
    assert not trainer.checkpoint_path(spec).exists()


KILL_EXTRACTION = """
import os, sys, tarfile
from tme_lib.data import imdb
stop, seen = int(sys.argv[1]), [0]
extract = tarfile.TarFile.extract
def dying(self, *args, **kwargs):
    seen[0] += 1
    if seen[0] == stop:
        os._exit(9)  # killed: no cleanup runs
    return extract(self, *args, **kwargs)
tarfile.TarFile.extract = dying
imdb.COUNTS = {counts!r}
imdb.imdb_root()
"""


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_extraction_killed_at_a_random_member_leaves_nothing_trusted(
    tiny_imdb_archive, isolated_folders, seed
):
    cache, _ = isolated_folders
    stop = int(np.random.default_rng(seed).integers(1, 20))
    code = KILL_EXTRACTION.format(counts=imdb.COUNTS)
    out = subprocess.run(
        [sys.executable, "-c", code, str(stop)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert out.returncode == 9, out.stderr
    assert not (cache / "imdb").exists()  # the killed run never renamed its folder
    root = imdb.imdb_root()  # the next run: stale folder removed, a complete extraction
    assert download.count_files(root.parent, imdb.COUNTS) == imdb.COUNTS
    assert [p.name for p in cache.glob(".imdb-*")] == []


class Killed(Exception):
    pass


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_killed_at_a_random_batch_resumes_to_the_same_record(seed):
    rng = np.random.default_rng(seed)
    stop_epoch, stop_batch = int(rng.integers(1, 4)), int(rng.integers(0, 8))
    reference = records.load_or_train(
        make_spec(chapter="faults", name=f"ref-{seed}"),
        BagOfTokens,
        make_loaders(),
        device="cpu",
        progress=False,
    )

    class Dying(list):
        passes = 0

        def __iter__(self):
            Dying.passes += 1
            for i, b in enumerate(super().__iter__()):
                if Dying.passes == stop_epoch + 1 and i == stop_batch:
                    raise Killed
                yield b

    spec = make_spec(chapter="faults", name=f"ref-{seed}", lr=0.05)
    spec = spec.replace(name=f"killed-{seed}")
    loaders = make_loaders()
    loaders.train = Dying(loaders.train)
    with pytest.raises(Killed):
        records.load_or_train(spec, BagOfTokens, loaders, device="cpu", progress=False)
    assert records.find_record(spec) is None  # nothing partial is a record
    again = records.load_or_train(
        spec, BagOfTokens, make_loaders(), device="cpu", progress=False
    )
    assert again.final["test_acc"] == reference.final["test_acc"]
    assert [e["train_loss"] for e in again.history] == pytest.approx(
        [e["train_loss"] for e in reference.history]
    )


def test_a_damaged_cache_file_is_named_removed_and_rebuilt(
    tiny_imdb_dir, monkeypatch, capsys
):
    from tme_lib.data import vectors

    monkeypatch.setenv("TME_PROFILE", "full")
    first = imdb.load_imdb(min_count=1)
    words, _ = vectors.word2vec_vectors(min_count=1)
    cache = Path(os.environ["TME_CACHE_DIR"])
    damaged = [
        next(cache.glob("imdb-index/*/index.npz")),
        next(cache.glob("vectors/*.npz")),
    ]
    for path in damaged:
        path.write_bytes(path.read_bytes()[:50])  # truncated, as by a full disk
    again = imdb.load_imdb(min_count=1)
    words_again, _ = vectors.word2vec_vectors(min_count=1)
    out = capsys.readouterr().out
    for path in damaged:
        assert f"The cache file {path} cannot be read" in out
    assert again.vocab.itos == first.vocab.itos and words_again == words
