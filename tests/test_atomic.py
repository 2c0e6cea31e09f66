"""Atomic outputs: whole or not at all, groups replaced together, the guard consulted first."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scanvan_sfm import guard
from scanvan_sfm.atomic import atomic_group, atomic_output, remove, remove_parts


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "out.txt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(path) as f:
        f.write(b"new, half")
        raise RuntimeError("stop")
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def test_a_group_is_replaced_only_when_every_file_is_whole(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    with atomic_group():
        for path in (a, b):
            with atomic_output(path) as f:
                f.write(b"1")
    with pytest.raises(RuntimeError), atomic_group():
        with atomic_output(a) as f:
            f.write(b"2")
        assert a.read_bytes() == b"1"  # not yet replaced
        raise RuntimeError("the second writer failed")
    assert a.read_bytes() == b"1" and b.read_bytes() == b"1" and sorted(tmp_path.iterdir()) == [a, b]


def test_every_write_and_removal_asks_the_guard(tmp_path):
    source = tmp_path / "images" / "x.jpg"
    source.parent.mkdir()
    source.write_bytes(b"original")
    guard.install(guard.guard_for([source]))
    try:
        for write in (lambda: atomic_output(source).__enter__(), lambda: remove(source),
                      lambda: atomic_output(tmp_path / "images" / "new.png").__enter__()):
            with pytest.raises(guard.WriteRefused):
                write()
    finally:
        guard.install(None)
    assert source.read_bytes() == b"original" and list(source.parent.iterdir()) == [source]


def test_kill_switch_and_leftover_parts(tmp_path):
    """The test-only kill point leaves a temp file behind; the next run's clean-up removes it."""
    script = ("import sys; from scanvan_sfm.atomic import atomic_output\n"
              "for name in 'abc':\n"
              "    with atomic_output(sys.argv[1] + '/' + name) as f: f.write(b'x')\n")
    killed = subprocess.run([sys.executable, "-c", script, str(tmp_path)],
                            env={"SCANVAN_TEST_KILL_AT_WRITE": "2:before", "PATH": ""}, check=False)
    assert killed.returncode == 137
    assert (tmp_path / "a").is_file() and not (tmp_path / "b").exists()
    assert len(list(tmp_path.glob(".b.*.part"))) == 1
    remove_parts(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_folder_in_the_way_is_named_not_the_temp_file(tmp_path):
    """An output whose path is a folder (a hand-made ``camera_mask.png/``): the error names it."""
    path = tmp_path / "camera_mask.png"
    path.mkdir()
    with pytest.raises(OSError) as raised, atomic_output(path) as f:
        f.write(b"png")
    assert raised.value.filename == str(path) and ".part" not in str(raised.value)
    assert list(tmp_path.iterdir()) == [path]
