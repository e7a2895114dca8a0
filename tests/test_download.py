"""Local copy first, checked downloads, atomic extraction and clear errors."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.error

import pytest

from tme_lib.data import download, imdb
from tme_lib.data.download import MARKER, DataError


def _no_download(*args, **kwargs):
    raise AssertionError("download() was called although a local copy exists")


def test_local_archive_is_extracted_into_the_cache_without_download(
    tiny_imdb_archive, isolated_folders, monkeypatch
):
    cache, data = isolated_folders
    monkeypatch.setattr(download, "download", _no_download)
    root = imdb.imdb_root()
    assert root.is_relative_to(cache) and (root / "train" / "pos" / "0_7.txt").exists()
    assert (root.parent / MARKER).exists()
    assert sorted(p.name for p in data.iterdir()) == [
        "aclImdb_v1.tar.gz"
    ]  # data dir untouched
    # the local copy is not the official archive: its hash must not be required
    assert download.sha256sum(tiny_imdb_archive) != imdb.SHA256


def test_extracted_local_folder_is_used_in_place(tiny_imdb_dir, monkeypatch):
    monkeypatch.setattr(download, "download", _no_download)
    assert imdb.imdb_root() == tiny_imdb_dir


def test_incomplete_local_folder_is_reported(tiny_imdb_dir):
    shutil.rmtree(tiny_imdb_dir / "train" / "unsup")
    with pytest.raises(DataError, match="aclImdb/train/unsup.*TME_DATA_DIR"):
        imdb.imdb_root()


def test_extraction_happens_once(tiny_imdb_archive, monkeypatch):
    imdb.imdb_root()
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: pytest.fail("extracted twice"))
    imdb.imdb_root()


def _assert_nothing_trusted(cache):
    leftovers = [
        p.name for p in cache.iterdir() if p.name != ".locks"
    ]  # locks hold no data
    assert leftovers == [], f"the cache keeps {leftovers} after a failed extraction"


def test_truncated_archive_gives_clear_error_and_no_cache(
    tiny_imdb_archive, isolated_folders
):
    cache, _ = isolated_folders
    content = tiny_imdb_archive.read_bytes()
    tiny_imdb_archive.write_bytes(content[: len(content) // 2])
    with pytest.raises(DataError, match=r"aclImdb_v1\.tar\.gz is corrupt.*Delete it"):
        imdb.imdb_root()
    _assert_nothing_trusted(cache)


def test_archive_with_wrong_layout_is_rejected(isolated_folders, tmp_path):
    cache, data = isolated_folders
    (tmp_path / "aclImdb" / "train" / "pos").mkdir(parents=True)
    with tarfile.open(data / "aclImdb_v1.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "aclImdb", arcname="aclImdb")
    with pytest.raises(DataError, match="expected layout.*aclImdb/test/pos"):
        imdb.imdb_root()
    _assert_nothing_trusted(cache)


def test_half_extracted_folder_without_marker_is_not_trusted(
    tiny_imdb_archive, isolated_folders
):
    cache, _ = isolated_folders
    stale = cache / "imdb" / "aclImdb" / "train" / "pos"
    # as left by an interrupted run of an older, non-atomic version
    stale.mkdir(parents=True)
    root = imdb.imdb_root()
    assert (root / "test" / "neg" / "0_2.txt").exists()


def test_offline_without_local_copy_names_the_variable_and_url(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="TME_DATA_DIR") as error:
        imdb.imdb_root()
    assert imdb.URL in str(error.value)


def test_download_checks_the_sha256(tmp_path):
    source = tmp_path / "file.bin"
    source.write_bytes(b"some bytes" * 1000)
    good = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = download.download(source.as_uri(), tmp_path / "out" / "ok.bin", sha256=good)
    assert dest.read_bytes() == source.read_bytes()
    bad = tmp_path / "out" / "bad.bin"
    with pytest.raises(DataError, match="sha256"):
        download.download(source.as_uri(), bad, sha256="0" * 64)
    assert not bad.exists() and not bad.with_name("bad.bin.part").exists()


def test_find_or_download_saves_into_the_data_folder(isolated_folders, tmp_path):
    _, data = isolated_folders
    source = tmp_path / "remote.bin"
    source.write_bytes(b"x" * 10)
    path = download.find_or_download("remote.bin", source.as_uri())
    assert path == data / "remote.bin"
    source.unlink()  # a second call must not need the network
    assert download.find_or_download("remote.bin", source.as_uri()) == path


@pytest.mark.real_data
def test_real_local_archive_is_used_without_download(real_data, monkeypatch):
    monkeypatch.setattr(download, "download", _no_download)
    root = imdb.imdb_root()
    assert len(list((root / "train" / "unsup").glob("*.txt"))) == 50_000
