"""The one safe read of what a team wrote (autograder.engine.files), from the attacker's side:
every way a team could point the grader's read at a file it must not have, or make it hang or
run out of descriptors."""

from __future__ import annotations

import os
from pathlib import Path

from autograder.engine.files import safe_list, safe_read


def test_reads_a_regular_file_inside_and_nothing_outside(tmp_path):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "rows.sqlite").write_bytes(b"x" * 100)
    assert safe_read(tmp_path, "db/rows.sqlite") == b"x" * 100
    assert safe_read(tmp_path, tmp_path / "db" / "rows.sqlite") == b"x" * 100
    assert safe_read(tmp_path, "db/rows.sqlite", max_bytes=10) == b"x" * 10
    for outside in ("../etc/passwd", "/etc/passwd", "db/../../etc/passwd", "", ".", "db"):
        assert safe_read(tmp_path, outside) is None, outside


def test_no_symlink_is_followed_anywhere_on_the_path(tmp_path):
    (tmp_path / "leaf").symlink_to("/etc/passwd")
    (tmp_path / "middle").symlink_to("/etc")
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "up").symlink_to(tmp_path)
    (tmp_path / "inner" / "secret").write_text("mine")
    assert safe_read(tmp_path, "leaf") is None
    assert safe_read(tmp_path, "middle/passwd") is None, "a symlinked folder in the middle of the path"
    assert safe_read(tmp_path, "inner/up/inner/secret") is None
    assert safe_list(tmp_path) == ["inner/secret"]


def test_a_fifo_does_not_hang_the_grader_and_a_hard_link_is_not_read(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    assert safe_read(tmp_path, "pipe") is None
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.write_text("not the team's")
    try:
        os.link(outside, tmp_path / "linked")
        assert safe_read(tmp_path, "linked") is None, "a second name for a file the grader may read"
        assert safe_list(tmp_path) == ["linked"], "listed (a regular file), never read; the FIFO is not listed"
    finally:
        outside.unlink()


def test_listing_many_folders_holds_one_chain_of_descriptors_and_stops_at_its_limit(tmp_path):
    for i in range(3000):
        (tmp_path / f"d{i:04d}").mkdir()
    (tmp_path / "d0000" / "a.db").write_text("1")
    (tmp_path / "zz.db").write_text("2")
    before = len(os.listdir("/proc/self/fd"))
    assert safe_list(tmp_path) == ["d0000/a.db", "zz.db"]
    assert len(os.listdir("/proc/self/fd")) == before, "every descriptor is closed again"
    assert len(safe_list(tmp_path, limit=100)) <= 1, "at most `limit` entries are visited"


def test_a_symlinked_root_is_not_entered(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert safe_list(Path(tmp_path / "link")) == []
    assert safe_read(tmp_path / "link", "f") is None
