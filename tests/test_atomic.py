"""Atomic writes: the target holds the old or the new content, never a part; no temporary is left."""

import os

import pytest

from lmgym.atomic import atomic_path, replace_path, write_atomic


def test_write_atomic_text_and_bytes(tmp_path):
    path = tmp_path / "out.json"
    write_atomic(path, "first")
    write_atomic(path, "second")
    assert path.read_text() == "second"
    write_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert os.listdir(tmp_path) == ["out.json"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    write_atomic(path, "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_a_stale_temporary_is_cleared_first(tmp_path):
    path = tmp_path / "out.txt"
    (tmp_path / "out.txt.tmp").mkdir()  # left by a killed process, even of another kind
    write_atomic(path, "new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["out.txt"]


def test_a_folder_is_swapped_whole(tmp_path):
    path = tmp_path / "policy"
    for version in ("v1", "v2"):
        with atomic_path(path) as tmp:
            os.makedirs(tmp)
            with open(os.path.join(tmp, version), "w") as f:
                f.write(version)
    assert os.listdir(path) == ["v2"]
    assert sorted(os.listdir(tmp_path)) == ["policy"]


def test_replace_path_onto_a_file_and_a_folder(tmp_path):
    (tmp_path / "a").write_text("new")
    (tmp_path / "b").write_text("old")
    replace_path(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").read_text() == "new" and not (tmp_path / "a").exists()
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "x").write_text("x")
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "y").write_text("y")
    replace_path(tmp_path / "new", tmp_path / "dest")
    assert os.listdir(tmp_path / "dest") == ["x"] and sorted(os.listdir(tmp_path)) == ["b", "dest"]
