"""Trust-on-first-use checksums: downloads without a published checksum are pinned in a lock file."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from http.server import ThreadingHTTPServer
from multiprocessing import get_context
from pathlib import Path

import pytest
import yaml

from local_http import QuietHandler, local_http_server
from specrec.data.download import (
    LOCK_ENV,
    ChecksumError,
    ChecksumLock,
    fetch_locked,
    materialize,
    resolve_lock_path,
)
from specrec.data.sources import DATASETS, DatasetSource, Remote

FIXTURES = Path(__file__).parent / "fixtures"
FAST = {"retries": 1, "backoff": 0.01, "timeout": 5}
BX = (FIXTURES / "book-crossing" / "BX-Book-Ratings.csv").read_bytes()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


class Handler(QuietHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        with self.server.lock:
            self.server.hits[self.path] += 1
        body = self.server.files.get(self.path)
        if body is None:
            self.reply(b"not found", 404)
        else:
            self.reply(body)


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    with local_http_server(Handler) as httpd:
        yield httpd


@pytest.fixture(autouse=True)
def no_lock_env(monkeypatch):
    """Never touch the project's config/checksums.lock from a test."""
    monkeypatch.delenv(LOCK_ENV, raising=False)


def book_crossing(server) -> DatasetSource:
    """book-crossing (no published checksum) with its URL on the local server."""
    server.files["/BX-Book-Ratings.csv"] = BX
    source = DATASETS["book-crossing"]
    raw = source.needs[0][0]
    assert raw.remote.checksum is None and raw.checksum is None
    remote = Remote(server.url + "/BX-Book-Ratings.csv", None)
    return replace(source, needs=((replace(raw, remote=remote),),))


def ml_latest_small(server, tmp_path: Path) -> DatasetSource:
    """ml-latest-small (its zip has no fixed checksum) served as a zip built from the fixtures."""
    archive = tmp_path / "ml-latest-small.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name in ("ratings.csv", "movies.csv"):
            zipped.write(FIXTURES / "ml-latest-small" / name, f"ml-latest-small/{name}")
    server.files["/ml-latest-small.zip"] = archive.read_bytes()
    source = DATASETS["ml-latest-small"]
    url = server.url + "/ml-latest-small.zip"
    needs = tuple(
        tuple(replace(raw, remote=Remote(url, None, raw.remote.member)) for raw in need)
        for need in source.needs
    )
    return replace(source, needs=needs)


def test_first_download_is_recorded_and_later_ones_verified(server, tmp_path):
    lock = tmp_path / "config" / "checksums.lock"
    source = book_crossing(server)
    url = server.url + "/BX-Book-Ratings.csv"
    materialize(source, tmp_path / "raw", lock_path=lock, **FAST)
    text = lock.read_text()
    assert text.startswith("# Trust-on-first-use")  # human-readable, says what it is
    assert yaml.safe_load(text) == {url: sha256(BX)}
    # a re-run keeps the verified file: no second download
    materialize(source, tmp_path / "raw", lock_path=lock, **FAST)
    assert server.hits["/BX-Book-Ratings.csv"] == 1
    # a fresh download of the same bytes passes and leaves the lock file as it was
    materialize(source, tmp_path / "raw2", lock_path=lock, **FAST)
    assert (tmp_path / "raw2" / "BX-Book-Ratings.csv").read_bytes() == BX
    assert lock.read_text() == text and server.hits["/BX-Book-Ratings.csv"] == 2


def test_tampered_content_is_refused(server, tmp_path):
    lock = tmp_path / "checksums.lock"
    source = book_crossing(server)
    materialize(source, tmp_path / "raw", lock_path=lock, **FAST)
    before = lock.read_text()
    tampered = BX.replace(b'"5"', b'"9"')
    server.files["/BX-Book-Ratings.csv"] = tampered
    raw = tmp_path / "raw2"
    with pytest.raises(ChecksumError) as err:
        materialize(source, raw, lock_path=lock, **FAST)
    assert err.value.expected == sha256(BX) and err.value.actual == sha256(tampered)
    message = str(err.value)
    assert "BX-Book-Ratings.csv" in message and str(lock) in message
    assert sha256(BX) in message and sha256(tampered) in message
    assert files_under(raw) == []  # neither the file nor a manifest nor a temp file
    assert lock.read_text() == before  # the first download's entry stays in force


def test_zip_without_checksum_is_locked_by_its_url(server, tmp_path):
    lock = tmp_path / "checksums.lock"
    source = ml_latest_small(server, tmp_path)
    materialize(source, tmp_path / "raw", lock_path=lock, **FAST)
    url = server.url + "/ml-latest-small.zip"
    assert yaml.safe_load(lock.read_text()) == {url: sha256(server.files["/ml-latest-small.zip"])}
    assert server.hits["/ml-latest-small.zip"] == 1  # one download for both members
    server.files["/ml-latest-small.zip"] += b"\0"  # GroupLens regenerated the archive
    with pytest.raises(ChecksumError, match="ml-latest-small.zip"):
        materialize(source, tmp_path / "raw2", lock_path=lock, **FAST)
    assert files_under(tmp_path / "raw2") == []


def test_lock_path_from_argument_env_or_default(server, tmp_path, monkeypatch):
    assert resolve_lock_path() == Path("config") / "checksums.lock"
    monkeypatch.setenv(LOCK_ENV, str(tmp_path / "env.lock"))
    assert resolve_lock_path() == tmp_path / "env.lock"
    assert resolve_lock_path(tmp_path / "arg.lock") == tmp_path / "arg.lock"  # the argument wins
    materialize(book_crossing(server), tmp_path / "raw", **FAST)
    assert (tmp_path / "env.lock").is_file()


def test_pinned_checksums_and_mirrors_do_not_touch_the_lock(server, tmp_path):
    lock = tmp_path / "checksums.lock"
    source = book_crossing(server)
    raw = source.needs[0][0]
    pinned = replace(source, needs=((replace(raw, remote=replace(raw.remote, checksum=sha256(BX))),),))
    materialize(pinned, tmp_path / "raw", lock_path=lock, **FAST)
    mirror = tmp_path / "mirror" / "book-crossing"
    mirror.mkdir(parents=True)
    (mirror / "BX-Book-Ratings.csv").write_bytes(BX)
    materialize("book-crossing", tmp_path / "raw2", str(tmp_path / "mirror"), lock_path=lock)
    assert not lock.exists()


def test_another_job_recording_other_bytes_meanwhile(server, tmp_path):
    """Two jobs download one URL at once and get different bytes: the second to record loses."""

    class Racing(ChecksumLock):
        def get(self, url: str) -> str | None:  # the other job's entry appears after this look-up
            return None

    lock = Racing(tmp_path / "checksums.lock")
    url = server.url + "/BX-Book-Ratings.csv"
    server.files["/BX-Book-Ratings.csv"] = BX
    lock.record(url, sha256(b"what the other job got"))
    dest = tmp_path / "raw" / "BX-Book-Ratings.csv"
    with pytest.raises(ChecksumError) as err:
        fetch_locked(url, dest, None, lock, **FAST)
    assert err.value.expected == sha256(b"what the other job got") and err.value.actual == sha256(BX)
    assert not dest.exists()


def record_many(path: str, worker: int, n: int) -> None:
    lock = ChecksumLock(path)
    for k in range(n):
        lock.record(f"https://example.org/{worker}/{k}", sha256(f"{worker}-{k}".encode()))


def test_concurrent_writers_do_not_lose_entries(tmp_path):
    path = tmp_path / "checksums.lock"
    workers, n = 4, 25
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        for future in [pool.submit(record_many, str(path), w, n) for w in range(workers)]:
            future.result()
    entries = ChecksumLock(path).entries()
    assert len(entries) == workers * n
    assert entries["https://example.org/3/24"] == sha256(b"3-24")
    assert not list(tmp_path.glob(".*.tmp"))


def test_first_record_wins(tmp_path):
    lock = ChecksumLock(tmp_path / "checksums.lock")
    assert lock.record("https://example.org/a", sha256(b"a")) == sha256(b"a")
    assert lock.record("https://example.org/a", sha256(b"b")) == sha256(b"a")
    assert lock.get("https://example.org/a") == sha256(b"a")


def test_malformed_lock_file_is_an_error(tmp_path):
    path = tmp_path / "checksums.lock"
    path.write_text("https://example.org/a: crc32:1234\n")
    with pytest.raises(ValueError, match="sha256:<hex>"):
        ChecksumLock(path).get("https://example.org/a")


def test_mirror_checksum_is_not_imposed_on_a_download(server, tmp_path):
    """A RawFile checksum describes the mirror's copy (Yelp2018's train.txt differs from the official
    file); a download whose Remote has no checksum is pinned in the lock file instead."""
    lock = tmp_path / "checksums.lock"
    source = book_crossing(server)
    mirror_only = replace(source.needs[0][0], checksum=sha256(b"the mirror's rebuilt copy"))
    materialize(replace(source, needs=((mirror_only,),)), tmp_path / "raw", lock_path=lock, **FAST)
    assert yaml.safe_load(lock.read_text()) == {server.url + "/BX-Book-Ratings.csv": sha256(BX)}
