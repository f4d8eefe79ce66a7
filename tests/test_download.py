"""fetch() against a local HTTP server; materialize() from fixture mirrors and a local zip; resolve_mirror."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from local_http import QuietHandler, local_http_server
from specrec import io
from specrec.data.download import (
    MIRROR_ENV,
    ChecksumError,
    DownloadError,
    MirrorFileError,
    fetch,
    materialize,
    resolve_mirror,
)
from specrec.data.sources import DATASETS, DatasetSource, Remote

FIXTURES = Path(__file__).parent / "fixtures"
BODY = b"user\titem\n" * 500
FAST = {"retries": 2, "backoff": 0.01, "timeout": 2}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# --------------------------------------------------------------------------------------------- server

Reply = Callable[[BaseHTTPRequestHandler, int], None]  # (handler, how many times this path was asked)


def truncated(handler: BaseHTTPRequestHandler) -> None:
    """Promise the whole body, send half, close: what a dropped connection looks like."""
    handler.reply(BODY[: len(BODY) // 2], length=len(BODY))


ROUTES: dict[str, Reply] = {
    "/good": lambda h, n: h.reply(BODY),
    "/truncated-once": lambda h, n: truncated(h) if n == 1 else h.reply(BODY),
    "/truncated-always": lambda h, n: truncated(h),
    "/500-once": lambda h, n: h.reply(b"oops", status=500) if n == 1 else h.reply(BODY),
    "/500-always": lambda h, n: h.reply(b"oops", status=503),
    "/429-once": lambda h, n: h.reply(b"slow down", status=429) if n == 1 else h.reply(BODY),
    "/404": lambda h, n: h.reply(b"nope", status=404),
    "/slow-once": lambda h, n: (time.sleep(1.5), h.reply(BODY)) if n == 1 else h.reply(BODY),
}


class Handler(QuietHandler):
    # HTTP/1.0: the server closes the connection after each reply, so a short body ends at once
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server = self.server
        with server.lock:
            server.hits[self.path] += 1
            count = server.hits[self.path]
        if self.path in server.files:
            self.reply(server.files[self.path])
        elif self.path in ROUTES:
            ROUTES[self.path](self, count)
        else:
            self.reply(b"not found", status=404)


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    with local_http_server(Handler) as httpd:
        yield httpd


# ---------------------------------------------------------------------------------------------- fetch


def test_fetch_good_file_verified(server, tmp_path):
    dest = tmp_path / "dl" / "good.txt"
    assert fetch(server.url + "/good", dest, checksum=sha256(BODY), **FAST) == dest
    assert dest.read_bytes() == BODY
    assert files_under(tmp_path) == [dest]  # no temp file left beside it


def test_fetch_md5_checksum(server, tmp_path):
    dest = tmp_path / "good.txt"
    fetch(server.url + "/good", dest, checksum="md5:" + hashlib.md5(BODY).hexdigest(), **FAST)
    assert dest.read_bytes() == BODY


def test_fetch_keeps_a_verified_file(server, tmp_path):
    dest = tmp_path / "good.txt"
    fetch(server.url + "/good", dest, checksum=sha256(BODY), **FAST)
    fetch(server.url + "/good", dest, checksum=sha256(BODY), **FAST)
    assert server.hits["/good"] == 1


def test_fetch_checksum_mismatch(server, tmp_path):
    dest = tmp_path / "dl" / "good.txt"
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ChecksumError) as err:
        fetch(server.url + "/good", dest, checksum=wrong, **FAST)
    message = str(err.value)
    assert "good.txt" in message and wrong in message and sha256(BODY) in message
    assert err.value.expected == wrong and err.value.actual == sha256(BODY)
    assert files_under(tmp_path) == []
    assert server.hits["/good"] == 1  # the same bytes would come again: no retry


def test_fetch_retries_truncated_body(server, tmp_path):
    dest = tmp_path / "file"
    fetch(server.url + "/truncated-once", dest, checksum=sha256(BODY), **FAST)
    assert dest.read_bytes() == BODY
    assert server.hits["/truncated-once"] == 2


def test_fetch_always_truncated_fails_without_partial_file(server, tmp_path):
    dest = tmp_path / "dl" / "file"
    # no checksum: only the Content-Length check can notice the short body
    with pytest.raises(DownloadError, match="truncated"):
        fetch(server.url + "/truncated-always", dest, **FAST)
    assert server.hits["/truncated-always"] == 3  # first try + 2 retries
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("path", ["/500-once", "/429-once"])
def test_fetch_retries_server_errors(server, tmp_path, path):
    dest = tmp_path / "file"
    fetch(server.url + path, dest, checksum=sha256(BODY), **FAST)
    assert dest.read_bytes() == BODY and server.hits[path] == 2


def test_fetch_gives_up_after_retries(server, tmp_path):
    with pytest.raises(DownloadError, match="3 attempts.*503"):
        fetch(server.url + "/500-always", tmp_path / "file", **FAST)
    assert server.hits["/500-always"] == 3 and files_under(tmp_path) == []


def test_fetch_client_error_fails_at_once(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        fetch(server.url + "/404", tmp_path / "file", **FAST)
    assert server.hits["/404"] == 1 and files_under(tmp_path) == []


def test_fetch_retries_timeout(server, tmp_path):
    dest = tmp_path / "file"
    fetch(server.url + "/slow-once", dest, retries=2, backoff=0.01, timeout=0.5)
    assert dest.read_bytes() == BODY and server.hits["/slow-once"] == 2


def test_fetch_unreachable_host(tmp_path):
    with pytest.raises(DownloadError, match="2 attempts"):
        fetch("http://127.0.0.1:9/nothing", tmp_path / "file", retries=1, backoff=0.01, timeout=1)


def test_bad_checksum_spec_is_rejected_before_download(tmp_path):
    with pytest.raises(ValueError, match="sha256:<hex>"):
        fetch("http://127.0.0.1:9/x", tmp_path / "file", checksum="crc32:1234")


# ---------------------------------------------------------------------------------- materialize: mirror

ML1M_FILES = [
    "ml-1m/ratings.dat",
    "ml-1m/ratings_no_timestamp.dat",
    "ml-1m/movies.dat",
    "ml-1m-melu-extrainfos/movies_extrainfos.dat",
]
ML100K_FILES = ["ml-100k/u.data", "ml-100k/u.item", "ml-100k/u.genre"]


def with_checksums(source: DatasetSource, checksums: dict[str, str | None]) -> DatasetSource:
    """The registered source with other content checksums (fixtures do not match the real files)."""
    needs = tuple(
        tuple(replace(raw, checksum=checksums.get(raw.name, raw.checksum)) for raw in need)
        for need in source.needs
    )
    return replace(source, needs=needs)


def fixture_checksums(files: list[str]) -> dict[str, str]:
    return {Path(f).name: sha256((FIXTURES / f).read_bytes()) for f in files}


def make_mirror(root: Path, files: list[str], gz: set[str] = frozenset()) -> Path:
    """A mirror laid out like /work/shared/data; names in `gz` are stored gzipped as NAME.gz."""
    for name in files:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name in gz:
            target.with_name(target.name + ".gz").write_bytes(gzip.compress((FIXTURES / name).read_bytes()))
        else:
            shutil.copy(FIXTURES / name, target)
    return root


def test_materialize_from_plain_mirror(tmp_path):
    mirror = make_mirror(tmp_path / "mirror", ML100K_FILES)
    source = with_checksums(DATASETS["ml-100k"], fixture_checksums(ML100K_FILES))
    raw = tmp_path / "raw"
    manifest = materialize(source, raw, str(mirror))
    for name in ML100K_FILES:
        assert (raw / Path(name).name).read_bytes() == (FIXTURES / name).read_bytes()
    assert manifest == io.read_json(raw / "MANIFEST.json")
    entry = {f["name"]: f for f in manifest["files"]}["u.item"]
    data = (FIXTURES / "ml-100k/u.item").read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
    assert entry["origin"] == str(mirror / "ml-100k/u.item")
    assert sorted(p.name for p in raw.iterdir()) == ["MANIFEST.json", "u.data", "u.genre", "u.item"]


def test_materialize_from_gz_mirror(tmp_path):
    gz = {"ml-1m/ratings_no_timestamp.dat", "ml-1m-melu-extrainfos/movies_extrainfos.dat"}
    files = ML1M_FILES[1:]  # like the real mirror: no ratings.dat
    mirror = make_mirror(tmp_path / "mirror", files, gz=gz)
    source = with_checksums(DATASETS["ml-1m"], fixture_checksums(files))
    raw = tmp_path / "raw"
    manifest = materialize(source, raw, str(mirror))
    names = {f["name"]: f for f in manifest["files"]}
    assert set(names) == {"ratings_no_timestamp.dat", "movies.dat", "movies_extrainfos.dat"}
    assert names["movies_extrainfos.dat"]["origin"].endswith("movies_extrainfos.dat.gz")
    extrainfos = (FIXTURES / "ml-1m-melu-extrainfos/movies_extrainfos.dat").read_bytes()
    assert (raw / "movies_extrainfos.dat").read_bytes() == extrainfos  # decompressed, CRLF intact
    assert not list(raw.glob("*.gz")) and not list(raw.glob(".*.tmp"))


def test_materialize_prefers_timestamps_and_drops_stale_alternative(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "ratings.dat").write_text("stale copy from an earlier run\n")
    mirror = make_mirror(tmp_path / "mirror", ML1M_FILES[1:])
    materialize(with_checksums(DATASETS["ml-1m"], fixture_checksums(ML1M_FILES)), raw, str(mirror))
    assert not (raw / "ratings.dat").exists() and (raw / "ratings_no_timestamp.dat").exists()
    # with both in the mirror, the canonical ratings.dat (it has timestamps) wins
    make_mirror(mirror, ML1M_FILES[:1])
    manifest = materialize(with_checksums(DATASETS["ml-1m"], fixture_checksums(ML1M_FILES)), raw, str(mirror))
    assert "ratings.dat" in {f["name"] for f in manifest["files"]}
    assert not (raw / "ratings_no_timestamp.dat").exists()


def test_materialize_missing_file_names_every_path(tmp_path):
    mirror = make_mirror(
        tmp_path / "mirror", ["ml-1m/movies.dat", "ml-1m-melu-extrainfos/movies_extrainfos.dat"]
    )
    with pytest.raises(FileNotFoundError) as err:
        materialize("ml-1m", tmp_path / "raw", str(mirror))
    message = str(err.value)
    for path in ("ml-1m/ratings.dat", "ml-1m/ratings.dat.gz"):
        assert str(mirror / path) in message
    for path in ("ml-1m/ratings_no_timestamp.dat", "ml-1m/ratings_no_timestamp.dat.gz"):
        assert str(mirror / path) in message
    assert not (tmp_path / "raw" / "MANIFEST.json").exists()


def test_materialize_mirror_checksum_mismatch(tmp_path):
    mirror = make_mirror(tmp_path / "mirror", ML100K_FILES, gz={"ml-100k/u.data"})
    checksums = fixture_checksums(ML100K_FILES)
    wrong = "sha256:" + "1" * 64
    checksums["u.data"] = wrong
    raw = tmp_path / "raw"
    with pytest.raises(ChecksumError) as err:
        materialize(with_checksums(DATASETS["ml-100k"], checksums), raw, str(mirror))
    message = str(err.value)
    assert "u.data.gz" in message and wrong in message
    assert sha256((FIXTURES / "ml-100k/u.data").read_bytes()) in message  # checked after gunzip
    assert not (raw / "u.data").exists() and not (raw / "MANIFEST.json").exists()
    assert not list(raw.glob(".*.tmp"))


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_a_broken_gz_in_the_mirror_is_named_with_the_fix(tmp_path, damage):
    mirror = make_mirror(tmp_path / "mirror", ML100K_FILES, gz={"ml-100k/u.data"})
    packed = mirror / "ml-100k/u.data.gz"
    data = packed.read_bytes()
    if damage == "truncated":
        packed.write_bytes(data[: len(data) // 2])
    else:  # a flipped byte in the CRC trailer
        packed.write_bytes(data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:])
    raw = tmp_path / "raw"
    with pytest.raises(MirrorFileError) as err:
        materialize(with_checksums(DATASETS["ml-100k"], fixture_checksums(ML100K_FILES)), raw, str(mirror))
    message = str(err.value)
    assert f"mirror file {packed} cannot be decompressed" in message and "uncompressed u.data" in message
    assert not (raw / "u.data").exists() and not list(raw.glob(".*.tmp"))


def test_real_checksums_reject_fixtures(tmp_path):
    """The registered sources carry the real checksums, so a fixture posing as the mirror is refused."""
    mirror = make_mirror(tmp_path / "mirror", ML100K_FILES)
    with pytest.raises(ChecksumError, match="06416e59"):
        materialize("ml-100k", tmp_path / "raw", str(mirror))


def test_materialize_missing_mirror_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="mirror directory"):
        materialize("ml-100k", tmp_path / "raw", str(tmp_path / "nowhere"))


# -------------------------------------------------------------------------------- materialize: remote


def remote_ml100k(server, tmp_path: Path, zip_checksum: str | None = None) -> DatasetSource:
    """ml-100k whose zip URL points at the local server, which serves a zip built from the fixtures."""
    buffer = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name in ML100K_FILES:
            zipped.write(FIXTURES / name, name)
    data = buffer.read_bytes()
    server.files["/ml-100k.zip"] = data
    checksum = zip_checksum or "md5:" + hashlib.md5(data).hexdigest()
    source = DATASETS["ml-100k"]
    needs = tuple(
        tuple(
            replace(raw, remote=Remote(server.url + "/ml-100k.zip", checksum, raw.remote.member))
            for raw in need
        )
        for need in source.needs
    )
    return replace(source, needs=needs)


def test_materialize_downloads_and_extracts(server, tmp_path):
    raw = tmp_path / "raw"
    manifest = materialize(remote_ml100k(server, tmp_path), raw, None)
    for name in ML100K_FILES:
        assert (raw / Path(name).name).read_bytes() == (FIXTURES / name).read_bytes()
    assert (raw / "downloads" / "ml-100k.zip").is_file()
    assert server.hits["/ml-100k.zip"] == 1  # one download for the three members
    origins = {f["origin"] for f in manifest["files"]}
    assert server.url + "/ml-100k.zip#ml-100k/u.item" in origins
    materialize(remote_ml100k(server, tmp_path), raw, None)
    assert server.hits["/ml-100k.zip"] == 1  # the verified archive is reused


def test_materialize_download_checksum_mismatch(server, tmp_path):
    raw = tmp_path / "raw"
    with pytest.raises(ChecksumError, match="ml-100k.zip"):
        materialize(remote_ml100k(server, tmp_path, zip_checksum="md5:" + "0" * 32), raw, None)
    assert files_under(raw) == []


def test_materialize_without_remote_needs_a_mirror(tmp_path):
    source = DATASETS["ml-1m"]
    no_remote = replace(source, needs=(source.needs[0][1:], *source.needs[1:]))
    with pytest.raises(DownloadError, match="ratings_no_timestamp.dat has no download URL"):
        materialize(no_remote, tmp_path / "raw", None)


# ------------------------------------------------------------------------------------- resolve_mirror


def test_resolve_mirror(tmp_path, monkeypatch):
    config_dir, env_dir = tmp_path / "config", tmp_path / "env"
    config_dir.mkdir()
    env_dir.mkdir()
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert resolve_mirror(None) is None and resolve_mirror("") is None
    monkeypatch.setenv(MIRROR_ENV, "")
    assert resolve_mirror(None) is None
    monkeypatch.setenv(MIRROR_ENV, str(env_dir))
    assert resolve_mirror(None) == str(env_dir)
    assert resolve_mirror("") == str(env_dir)
    assert resolve_mirror(str(config_dir)) == str(config_dir)  # config wins


def test_resolve_mirror_missing_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="from config"):
        resolve_mirror(str(tmp_path / "nowhere"))
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match=rf"gone \(from \${MIRROR_ENV}\)"):
        resolve_mirror(None)
