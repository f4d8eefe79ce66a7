"""Get a dataset's raw files into raw_dir: from an offline mirror, or from the canonical URLs.

Every file is verified (checksum) and written atomically, so a file that exists under its final name is
complete and correct; MANIFEST.json is written last and records what was used, from where.

Trust on first use: a download whose Remote has no published checksum (GroupLens regenerates
ml-latest-small.zip; RippleNet's Book-Crossing copy has none) is verified against a lock file instead.
The first successful download records "sha256:<hex>" for its URL there; every later download of that URL
must match it (ChecksumError naming the file, the expected and the actual checksum otherwise). The lock
file is `config/checksums.lock` (YAML, one `url: sha256:...` entry per line; commit it to pin what was
used), or `$SPECREC_CHECKSUM_LOCK`, or materialize's `lock_path`. Updates are atomic and serialised by
an flock on a sidecar `<lock file>.flock`, so download jobs running at once do not lose entries. To accept
a new upstream version, delete its entry. Mirror files are verified against their RawFile checksums as
before; the lock file is for downloads only.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import yaml
from tqdm.auto import tqdm

from specrec import io
from specrec.data.sources import DatasetSource, RawFile, get_source

MIRROR_ENV = "SPECREC_MIRROR"
LOCK_ENV = "SPECREC_CHECKSUM_LOCK"
DEFAULT_LOCK = Path("config") / "checksums.lock"
MANIFEST = "MANIFEST.json"
CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A file's content does not match the checksum it was promised to have."""

    def __init__(self, file: str | os.PathLike, expected: str, actual: str) -> None:
        self.file, self.expected, self.actual = str(file), expected, actual
        super().__init__(f"checksum mismatch for {file}: expected {expected}, got {actual}")


class DownloadError(RuntimeError):
    """A download failed for good (a client error, or every retry used up)."""


class MirrorFileError(ValueError):
    """A file of the local mirror cannot be read: a truncated or corrupted .gz."""


class _Retryable(Exception):
    """A failure that another attempt may not repeat: 5xx, 429, a timeout, a cut connection."""


# ------------------------------------------------------------------------------------------- checksums


def parse_checksum(checksum: str) -> tuple[str, str]:
    """'md5:<hex>' -> ('md5', '<hex>'), rejecting unknown algorithms early rather than after a download."""
    algorithm, sep, digest = checksum.partition(":")
    if not sep or not digest or algorithm not in hashlib.algorithms_guaranteed:
        raise ValueError(f"checksum must look like 'sha256:<hex>' or 'md5:<hex>', got {checksum!r}")
    return algorithm, digest.lower()


def _hashers(checksum: str | None) -> dict[str, Any]:
    """sha256 always (for the manifest) plus the checksum's own algorithm."""
    names = {"sha256"} | ({parse_checksum(checksum)[0]} if checksum else set())
    return {name: hashlib.new(name) for name in names}


def _verify(file: str | os.PathLike, checksum: str | None, hashers: dict[str, Any]) -> None:
    if checksum is None:
        return
    algorithm, expected = parse_checksum(checksum)
    actual = hashers[algorithm].hexdigest()
    if actual != expected:
        raise ChecksumError(file, f"{algorithm}:{expected}", f"{algorithm}:{actual}")


def file_checksum(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    with open(path, "rb") as handle:
        return f"{algorithm}:{hashlib.file_digest(handle, algorithm).hexdigest()}"


def _copy_hashing(source: IO[bytes], target: Path, hashers: dict[str, Any]) -> int:
    size = 0
    with open(target, "wb") as out:
        while chunk := source.read(CHUNK):
            out.write(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
            size += len(chunk)
    return size


# ------------------------------------------------------------------------------------------------ fetch


def fetch(
    url: str,
    dest: str | os.PathLike,
    checksum: str | None = None,
    retries: int = 3,
    timeout: float = 60,
    backoff: float = 1.0,
) -> Path:
    """Download `url` to `dest`, verified against `checksum`; retry transient failures.

    `retries` is how many more attempts follow a failed first one, waiting backoff * 2**k seconds between
    them. 5xx, 429, URL errors, timeouts and truncated bodies are retried; other 4xx fail at once (asking
    again will not help). A checksum mismatch is not retried either: the server sends the same bytes.
    A dest that already holds the right content is kept, so re-runs do not download again.
    """
    dest = Path(dest)
    if checksum and dest.is_file() and file_checksum(dest, parse_checksum(checksum)[0]) == _norm(checksum):
        return dest
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            with io.atomic_path(dest) as tmp:  # a failed attempt leaves nothing, not even the temp file
                hashers = _hashers(checksum)
                _stream(url, tmp, hashers, timeout, dest.name)
                _verify(f"{dest} (from {url})", checksum, hashers)
            return dest
        except _Retryable as err:
            last = err
    raise DownloadError(f"could not download {url} after {retries + 1} attempts: {last}") from last


def _norm(checksum: str) -> str:
    algorithm, digest = parse_checksum(checksum)
    return f"{algorithm}:{digest}"


def _stream(url: str, target: Path, hashers: dict[str, Any], timeout: float, label: str) -> None:
    """One attempt: stream the body into `target`; raise _Retryable for anything worth another try."""
    request = urllib.request.Request(url, headers={"User-Agent": "specrec"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 429 or err.code >= 500:
            raise _Retryable(f"HTTP {err.code} {err.reason}") from err
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
        raise _Retryable(f"{type(err).__name__}: {err}") from err
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        try:
            size = _copy_progress(response, target, hashers, total, label)
        except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
            raise _Retryable(f"{type(err).__name__} while reading: {err}") from err
    # http.client returns a short body silently when the server closes early; only the count tells
    if total is not None and size < total:
        raise _Retryable(f"truncated body: got {size} of {total} bytes")


def _copy_progress(
    response: IO[bytes], target: Path, hashers: dict[str, Any], total: int | None, label: str
) -> int:
    size = 0
    with (
        open(target, "wb") as out,
        tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, leave=False) as bar,
    ):
        while chunk := response.read(CHUNK):
            out.write(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
            size += len(chunk)
            bar.update(len(chunk))
    return size


# ------------------------------------------------------------------------------ trust-on-first-use lock

LOCK_HEADER = """\
# Trust-on-first-use checksums of downloads that have no published checksum (specrec.data.download).
# One entry per URL: the sha256 of its first successful download; later downloads must match it.
# Delete an entry to accept a new upstream version of that file.
"""


def resolve_lock_path(lock_path: str | os.PathLike | None = None) -> Path:
    """The lock file: `lock_path` if given, else $SPECREC_CHECKSUM_LOCK, else config/checksums.lock."""
    value = lock_path if lock_path not in (None, "") else os.environ.get(LOCK_ENV) or DEFAULT_LOCK
    return Path(os.path.expandvars(str(value))).expanduser()


class ChecksumLock:
    """The lock file: URL -> "sha256:<hex>" of the first successful download (see the module docstring)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def get(self, url: str) -> str | None:
        return self.entries().get(url)

    def entries(self) -> dict[str, str]:
        if not self.path.is_file():
            return {}
        data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{self.path}: expected one 'url: sha256:<hex>' entry per line")
        for checksum in data.values():
            parse_checksum(checksum)
        return {str(url): checksum for url, checksum in data.items()}

    def record(self, url: str, checksum: str) -> str:
        """Record `checksum` for `url` unless an entry exists; return the entry in force afterwards.

        Read, add and atomic rewrite happen under an exclusive flock on the sidecar file, so two jobs
        recording at once both keep their entries, and the second of two downloads of one URL sees
        the first one's entry.
        """
        with self._locked():
            entries = self.entries()
            if url in entries:
                return entries[url]
            entries[url] = checksum
            body = yaml.safe_dump(entries, sort_keys=True, default_flow_style=False, width=10_000)
            io.write_text(self.path, LOCK_HEADER + body)
            return checksum

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".flock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _matches(path: Path, checksum: str) -> bool:
    return file_checksum(path, parse_checksum(checksum)[0]) == _norm(checksum)


def fetch_locked(
    url: str, dest: str | os.PathLike, checksum: str | None, lock: ChecksumLock, **options: Any
) -> Path:
    """fetch() with `checksum`; without one, with the lock file's entry, recording one on first use."""
    dest = Path(dest)
    if checksum is not None:
        return fetch(url, dest, checksum=checksum, **options)
    recorded = lock.get(url)
    try:
        fetch(url, dest, checksum=recorded, **options)
    except ChecksumError as err:
        raise ChecksumError(
            f"{dest} (from {url}; expected checksum recorded in {lock.path})", err.expected, err.actual
        ) from None
    if recorded is None:
        actual = file_checksum(dest)
        in_force = lock.record(url, actual)
        if not _matches(dest, in_force):  # another job recorded other bytes for this URL meanwhile
            dest.unlink(missing_ok=True)
            raise ChecksumError(
                f"{dest} (from {url}; expected checksum recorded in {lock.path})", in_force, actual
            )
    return dest


# ------------------------------------------------------------------------------------------ materialize


def resolve_mirror(config_value: str | os.PathLike | None) -> str | None:
    """The mirror folder to use: the config value if set, else $SPECREC_MIRROR; ""/None means none.

    A mirror that is named but missing is an error, not a silent fall-back to downloading: offline that
    would fail later and less clearly, online it would quietly use other bytes than intended.
    """
    origin, value = "config", config_value
    if value is None or str(value) == "":
        origin, value = f"${MIRROR_ENV}", os.environ.get(MIRROR_ENV)
    if value is None or str(value) == "":
        return None
    path = Path(os.path.expandvars(str(value))).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"mirror directory {path} (from {origin}) does not exist")
    return str(path.resolve())


def materialize(
    dataset: str | DatasetSource,
    raw_dir: str | os.PathLike,
    mirror: str | None = None,
    lock_path: str | os.PathLike | None = None,
    *,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60,
) -> dict:
    """Put every raw file of `dataset`, decompressed and verified, under raw_dir; write MANIFEST.json.

    From `mirror` (a folder laid out like /work/shared/data, files plain or .gz) when given, else from
    the canonical URLs (archives are kept in raw_dir/downloads/ so a re-run needs no network). A download
    without a published checksum is checked against the lock file (`lock_path`, else
    $SPECREC_CHECKSUM_LOCK, else config/checksums.lock; trust on first use, see the module docstring).
    retries, backoff and timeout go to fetch. `dataset` may be a DatasetSource, e.g. one with other
    checksums. Returns the manifest.
    """
    source = get_source(dataset)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / MANIFEST).unlink(missing_ok=True)  # a failed run must not leave an old manifest vouching
    if mirror:
        if not Path(mirror).is_dir():
            raise FileNotFoundError(f"mirror directory {mirror} does not exist")
        files = [_from_mirror(need, Path(mirror), raw_dir) for need in source.needs]
    else:
        lock = ChecksumLock(resolve_lock_path(lock_path))
        options = {"retries": retries, "backoff": backoff, "timeout": timeout}
        files = _from_remote(source, raw_dir, lock, options)
    _remove_unused_alternatives(source, raw_dir, {entry["name"] for entry in files})
    manifest = {"dataset": source.name, "mirror": str(mirror) if mirror else None, "files": files}
    io.write_json(raw_dir / MANIFEST, manifest)
    return manifest


def _mirror_candidates(need: Iterable[RawFile], mirror: Path) -> list[tuple[RawFile, Path]]:
    return [(raw, mirror / name) for raw in need for name in (raw.mirror_path, raw.mirror_path + ".gz")]


def _from_mirror(need: tuple[RawFile, ...], mirror: Path, raw_dir: Path) -> dict:
    """Copy (or gunzip) the first alternative present in the mirror to raw_dir, verified."""
    candidates = _mirror_candidates(need, mirror)
    for raw, path in candidates:
        if path.is_file():
            opener = gzip.open if path.suffix == ".gz" else open
            try:
                with opener(path, "rb") as handle:
                    return _write_verified(handle, raw_dir / raw.name, raw.checksum, origin=str(path))
            except (EOFError, gzip.BadGzipFile, zlib.error) as error:
                raise MirrorFileError(
                    f"mirror file {path} cannot be decompressed ({type(error).__name__}: {error}): it is "
                    f"truncated or corrupted. Copy it to the mirror again, or put the uncompressed "
                    f"{path.with_suffix('').name} there instead; nothing was written to {raw_dir}"
                ) from error
    names = " or ".join(raw.name for raw in need)
    looked = ", ".join(str(path) for _, path in candidates)
    raise FileNotFoundError(f"raw file {names} not found in mirror {mirror}; looked for: {looked}")


def _write_verified(handle: IO[bytes], target: Path, checksum: str | None, origin: str) -> dict:
    """Stream `handle` into `target` atomically; a checksum mismatch leaves no file behind."""
    hashers = _hashers(checksum)
    with io.atomic_path(target) as tmp:
        size = _copy_hashing(handle, tmp, hashers)
        _verify(origin, checksum, hashers)
    return {"name": target.name, "sha256": hashers["sha256"].hexdigest(), "bytes": size, "origin": origin}


def _from_remote(source: DatasetSource, raw_dir: Path, lock: ChecksumLock, options: dict) -> list[dict]:
    entries = []
    for need in source.needs:
        raw = next((raw for raw in need if raw.remote is not None), None)
        if raw is None:
            names = " or ".join(r.name for r in need)
            raise DownloadError(f"{source.name}: {names} has no download URL; pass a mirror")
        entries.append(_download_one(raw, raw_dir, lock, options))
    return entries


def _download_one(raw: RawFile, raw_dir: Path, lock: ChecksumLock, options: dict) -> dict:
    remote = raw.remote
    assert remote is not None
    if remote.member is None:
        # the URL is the file itself: verify the Remote's checksum, or the lock file's entry when it has
        # none. Not raw.checksum: that is the mirror copy's, which may differ (Yelp2018's train.txt)
        target = fetch_locked(remote.url, raw_dir / raw.name, remote.checksum, lock, **options)
        sha256 = file_checksum(target).partition(":")[2]
        return {"name": raw.name, "sha256": sha256, "bytes": target.stat().st_size, "origin": remote.url}
    archive = fetch_locked(
        remote.url, raw_dir / "downloads" / remote.filename, remote.checksum, lock, **options
    )
    # the archive's md5 (or its lock entry) is the authoritative check; the members' sha256 come from the
    # mirror's copies, so they are recorded in the manifest but not imposed on the canonical download
    with zipfile.ZipFile(archive) as zipped:
        try:
            member = zipped.open(remote.member)
        except KeyError:
            raise FileNotFoundError(f"{remote.member} is not in {archive} (from {remote.url})") from None
        with member:
            return _write_verified(member, raw_dir / raw.name, None, origin=f"{remote.url}#{remote.member}")


def _remove_unused_alternatives(source: DatasetSource, raw_dir: Path, used: set[str]) -> None:
    """Delete alternatives not chosen this time, so the parser can never pick up a stale one."""
    for raw in source.raw_files():
        if raw.name not in used:
            (raw_dir / raw.name).unlink(missing_ok=True)


__all__ = [
    "DEFAULT_LOCK",
    "LOCK_ENV",
    "ChecksumError",
    "ChecksumLock",
    "DownloadError",
    "MIRROR_ENV",
    "fetch",
    "fetch_locked",
    "file_checksum",
    "materialize",
    "parse_checksum",
    "resolve_lock_path",
    "resolve_mirror",
]
