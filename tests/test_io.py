"""Atomic writes: a reader sees the old file or the whole new one; disk faults are clear errors."""

from __future__ import annotations

import errno
import os

import pytest

from specrec import io


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(
    ("code", "said"),
    [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "the file system is read-only")],
)
def test_a_full_or_read_only_disk_is_named_and_nothing_is_lost(tmp_path, monkeypatch, code, said):
    target = tmp_path / "metrics.json"
    target.write_text('{"old": 1}')

    def replace_fails(*args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(io.os, "replace", replace_fails)
    with pytest.raises(io.OutputError, match=f"cannot write .*metrics.json: {said}; metrics.json was left"):
        io.write_json(target, {"new": 2})
    assert target.read_text() == '{"old": 1}' and list(tmp_path.iterdir()) == [target]


def test_results_get_the_permissions_of_a_plain_file(tmp_path):
    io.write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_jobs_warnings_reach_the_console_as_well_as_its_log(tmp_path, monkeypatch, capsys):
    import logging
    import sys

    from specrec.runtime import log_to

    monkeypatch.setattr(sys, "stderr", sys.stderr)  # restored after the test
    log = log_to(str(tmp_path / "job.log"))
    log.info("progress only")
    logging.getLogger("specrec.data").warning("skipped 2 malformed lines")
    for handler in logging.getLogger().handlers:
        handler.flush()
    console = capsys.readouterr().err
    assert "skipped 2 malformed lines" in console and f"log: {tmp_path / 'job.log'}" in console
    assert "progress only" not in console
    assert "progress only" in (tmp_path / "job.log").read_text()
    logging.basicConfig(force=True)  # leave logging as other tests expect it
