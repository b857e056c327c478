# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""file_digests: a big build input is read once while it stays as it was, and read again after any write;
the record never changes a hash. image_build's use of it is tested in test_image_build.py."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import time

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import file_digests as fd

BIG = fd.MIN_SIZE + 1
REAL_TIME_NS = time.time_ns


def later_ns():
    """A clock a minute ahead: the files a test just wrote count as settled (hashed long after their last write)."""
    return REAL_TIME_NS() + 60 * 10 ** 9


def write_big(path, fill=b"a"):
    path.write_bytes(fill * BIG)
    return str(path)


def no_reads(monkeypatch):
    def refuse(path):
        raise AssertionError("%s was read although the record knows it" % path)
    monkeypatch.setattr(fd, "file_sha256", refuse)


def test_a_small_file_is_hashed_and_never_recorded(tmp_path):
    small = tmp_path / "Dockerfile"
    small.write_text("FROM x\n")
    digests = fd.FileDigests(str(tmp_path / "record.json"), clock_ns=later_ns)
    assert digests.digest(str(small)) == fd.file_sha256(str(small))
    assert not digests.save() and not (tmp_path / "record.json").exists()


def test_a_settled_big_file_is_read_once_then_taken_from_the_record(tmp_path, monkeypatch):
    wheel = write_big(tmp_path / "t.whl")
    record = str(tmp_path / "record.json")
    first = fd.FileDigests(record, clock_ns=later_ns)
    expected = fd.file_sha256(wheel)
    assert first.digest(wheel) == expected and first.hashed == [wheel]
    assert first.save()
    no_reads(monkeypatch)
    second = fd.FileDigests(record, clock_ns=later_ns)
    assert second.digest(wheel) == expected and second.remembered == [wheel]
    assert not second.save()  # nothing new: the record is not rewritten


@pytest.mark.parametrize("change", ["same size and mtime", "touch", "replaced"])
def test_any_write_makes_the_file_read_again(tmp_path, change):
    wheel = write_big(tmp_path / "t.whl")
    record = str(tmp_path / "record.json")
    first = fd.FileDigests(record, clock_ns=later_ns)
    first.digest(wheel)
    first.save()
    time.sleep(0.05)  # past the filesystem's timestamp granularity
    st = os.stat(wheel)
    if change == "same size and mtime":  # what a tool that restores mtimes leaves: only ctime moved
        write_big(tmp_path / "t.whl", fill=b"b")
        os.utime(wheel, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif change == "touch":
        os.utime(wheel)
    else:  # a new file renamed over the old one (pip, cp --remove-destination)
        write_big(tmp_path / "new.whl", fill=b"c")
        os.replace(str(tmp_path / "new.whl"), wheel)
    second = fd.FileDigests(record, clock_ns=later_ns)
    assert second.digest(wheel) == fd.file_sha256(wheel) and second.hashed == [wheel]


def test_a_file_written_just_now_is_hashed_but_not_recorded(tmp_path):
    """Racily clean (git's term): another write within the timestamp granularity would leave stat() unchanged."""
    wheel = write_big(tmp_path / "t.whl")
    record = str(tmp_path / "record.json")
    digests = fd.FileDigests(record)  # the real clock: the file changed a moment ago
    assert digests.digest(wheel) == fd.file_sha256(wheel)
    assert wheel not in digests.files and not digests.save()
    again = fd.FileDigests(record)
    again.digest(wheel)
    assert again.hashed == [wheel]


def test_a_record_that_cannot_be_read_is_ignored_and_rewritten(tmp_path):
    wheel = write_big(tmp_path / "t.whl")
    record = tmp_path / "record.json"
    for broken in ("{not json", json.dumps({"scheme": "other", "files": {wheel: {"stat": [], "sha256": "x"}}}),
                   json.dumps([1, 2])):
        record.write_text(broken)
        digests = fd.FileDigests(str(record), clock_ns=later_ns)
        assert digests.digest(wheel) == fd.file_sha256(wheel) and digests.hashed == [wheel]
        assert digests.save()
        assert json.loads(record.read_text())["files"][wheel]["sha256"] == fd.file_sha256(wheel)


def test_save_drops_files_that_are_gone_and_survives_a_folder_it_cannot_write(tmp_path):
    keep, gone = write_big(tmp_path / "keep.whl"), write_big(tmp_path / "gone.whl", fill=b"g")
    record = str(tmp_path / "record.json")
    digests = fd.FileDigests(record, clock_ns=later_ns)
    digests.digest(keep)
    digests.digest(gone)
    os.unlink(gone)
    assert digests.save()
    assert sorted(json.loads(open(record).read())["files"]) == [keep]
    elsewhere = fd.FileDigests(str(tmp_path / "no-such-dir" / "record.json"), clock_ns=later_ns)
    elsewhere.digest(keep)
    assert not elsewhere.save() and elsewhere.dirty  # the next run only reads the wheel again
    assert not [n for n in os.listdir(str(tmp_path)) if n.startswith(".file-digests.")]
