"""The book's records outside a clone: the records archive, its lock, and what a notebook does
when the library is installed without the repository (``tme_lib.training.published``)."""

import json
import stat

import pytest
from test_records import spec, trained

from tme_lib import config
from tme_lib.config import DataError
from tme_lib.training import provenance, published, records
from tme_lib.training.records import RecordError


def tiny_runs(root):
    (root / "tme9").mkdir(parents=True)
    (root / "tme9" / "a-0123.json").write_text('{"x": 1}')
    (root / "tme9" / "a-0123.pt").write_bytes(b"\x00\x01weights")
    (root / "data" / "b.json").parent.mkdir()
    (root / "data" / "b.json").write_text("{}")
    return root


def test_the_archive_is_the_same_bytes_for_the_same_records_and_changes_with_them(
    tmp_path,
):
    runs = tiny_runs(tmp_path / "runs")
    first = published.build_archive(runs, tmp_path / "one.tar.gz")
    (runs / "tme9" / "a-0123.json").touch()  # a new date alone changes nothing
    second = published.build_archive(runs, tmp_path / "two.tar.gz")
    assert first == second
    assert (tmp_path / "one.tar.gz").read_bytes() == (
        tmp_path / "two.tar.gz"
    ).read_bytes()
    assert sorted(first["files"]) == ["data/b.json", "tme9/a-0123.json", "tme9/a-0123.pt"]
    (runs / "tme9" / "a-0123.json").write_text('{"x": 2}')
    assert (
        published.build_archive(runs, tmp_path / "three.tar.gz")["sha256"]
        != first["sha256"]
    )


def test_the_lock_describes_the_committed_records():
    """Fails when records were committed without ``python tools/records_archive.py lock``."""
    lock = published.read_lock()
    assert lock["files"] == published.files_of(published.clone_runs())
    assert lock["archive"] == published.archive_name(lock["sha256"])


@pytest.mark.slow
def test_the_lock_names_the_archive_those_records_pack_into(tmp_path):
    built = published.build_archive(published.clone_runs(), tmp_path / "records.tar.gz")
    assert built == published.read_lock()


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The library as if installed from a wheel: not a checkout, a lock of a tiny archive."""
    runs = tiny_runs(tmp_path / "source-runs")
    archive_dir = tmp_path / "archives"
    lock = published.build_archive(runs, archive_dir / "built.tar.gz")
    (archive_dir / "built.tar.gz").rename(archive_dir / lock["archive"])
    lock_file = tmp_path / "records_lock.json"
    lock_file.write_text(json.dumps(lock))
    monkeypatch.setattr(published, "LOCK", lock_file)
    monkeypatch.setattr(config, "IN_CHECKOUT", False)
    monkeypatch.setenv("TME_PROFILE", "full")
    return lock, archive_dir / lock["archive"]


def test_outside_a_clone_the_records_come_from_the_archive_read_only(
    installed, monkeypatch
):
    lock, archive = installed
    monkeypatch.setenv("TME_DATA_DIR", str(archive.parent))
    runs = published.runs_dir()
    assert runs.is_relative_to(config.cache_dir())
    assert published.files_of(runs) == lock["files"]
    record = runs / "tme9" / "a-0123.json"
    assert not record.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert records.published_dir("tme9") == runs / "tme9"
    archive.unlink()  # extracted once: the archive is not needed again
    assert published.runs_dir() == runs


def test_an_archive_with_other_contents_under_the_locked_name_is_refused(
    installed, monkeypatch, tmp_path
):
    lock, archive = installed
    archive.write_bytes(archive.read_bytes()[:-10] + b"0123456789")
    monkeypatch.setenv("TME_DATA_DIR", str(archive.parent))
    with pytest.raises(DataError, match="not the records archive") as error:
        published.runs_dir()
    assert lock["sha256"] in str(error.value)


def test_offline_without_the_archive_the_message_says_what_to_download_or_set(
    installed, monkeypatch
):
    lock, _ = installed

    def offline(url, dest, sha256=None):
        raise DataError("no network") from OSError("Name or service not known")

    monkeypatch.setattr(published, "download", offline)
    with pytest.raises(DataError) as error:
        published.runs_dir()
    message = str(error.value)
    assert published.archive_url(lock) in message and lock["sha256"] in message
    for what in ("TME_DATA_DIR", "TME_TRAIN_MISSING=1", "clone"):
        assert what in message
    assert published.archive_url(lock).startswith(config.repository() + "/releases/")


def test_outside_a_clone_a_missing_run_is_trained_only_when_asked(installed, monkeypatch):
    _, archive = installed
    monkeypatch.setenv("TME_DATA_DIR", str(archive.parent))
    s = spec(name="missing")
    with pytest.raises(RecordError, match="TME_TRAIN_MISSING=1"):
        trained(s)
    monkeypatch.setenv("TME_TRAIN_MISSING", "1")
    record = trained(s)
    assert "dirty" not in record.code_version
    assert record.code_version == provenance.release()
    assert records.find_record(s).is_relative_to(config.cache_dir())  # never the archive
    monkeypatch.delenv("TME_TRAIN_MISSING")
    assert trained(s).final == record.final  # found again, without being asked


def test_outside_a_clone_the_code_is_the_release_never_dirty(monkeypatch, capsys):
    monkeypatch.setattr(config, "IN_CHECKOUT", False)
    code = provenance.code_version()
    assert code == (provenance.release(), False)
    assert provenance.release().startswith("tme_lib ")
    assert "dirty" not in provenance.recorded_version(code)
    assert "uncommitted" not in provenance.describe(code)
    monkeypatch.setenv("TME_PROFILE", "full")
    monkeypatch.setenv("TME_TRAIN_MISSING", "1")
    monkeypatch.setattr(published, "runs_dir", lambda: config.cache_dir() / "none")
    trained(spec(name="told"))
    out = capsys.readouterr().out
    assert "Commit" not in out and "Uncommitted" not in out


def test_the_repository_is_named_in_one_place(tmp_path):
    import tomllib

    project = tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert config.repository() == project["urls"]["Repository"]


def test_train_missing_reads_its_variable(monkeypatch):
    assert not config.train_missing()
    monkeypatch.setenv("TME_TRAIN_MISSING", "1")
    assert config.train_missing()
    monkeypatch.setenv("TME_TRAIN_MISSING", "sometimes")
    with pytest.raises(ValueError, match="TME_TRAIN_MISSING"):
        config.train_missing()
