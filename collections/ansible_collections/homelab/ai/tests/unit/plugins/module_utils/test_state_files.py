# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""state_files: the decision (what must be written) apart from the writing; tests/docker_modules runs the module."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import shutil

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import state_files as sf


def test_a_file_is_written_only_when_its_content_differs(tmp_path):
    path = tmp_path / "plan.json"
    first = sf.plan_file({"path": str(path), "content": "{}\n"}, 0)
    assert first["write"] and first["before"] is None
    path.write_text("{}\n")
    assert not sf.plan_file({"path": str(path), "content": "{}\n"}, 0)["write"]
    assert sf.plan_file({"path": str(path), "content": "{\"a\": 1}\n"}, 0)["write"]


def test_write_atomically_keeps_the_mode_of_an_existing_file(tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    os.chmod(str(path), 0o600)
    plan = sf.plan_file({"path": str(path), "content": "new"}, 0)
    sf.write_atomically(plan, shutil.move)
    assert path.read_text() == "new" and os.stat(str(path)).st_mode & 0o777 == 0o600
    assert os.listdir(str(tmp_path)) == ["f"]


def test_a_large_file_diffs_as_its_size(tmp_path):
    plan = sf.plan_file({"path": str(tmp_path / "big"), "content": "x" * (sf.DIFF_MAX_BYTES + 1)}, 0)
    assert sf.file_diff(plan)["after"] == "(%d bytes)\n" % (sf.DIFF_MAX_BYTES + 1)


@pytest.mark.parametrize("mode,expected", [("0644", 0o644), ("755", 0o755), (None, None), ("", None)])
def test_parse_mode(mode, expected):
    assert sf.parse_mode(mode, "x") == expected


@pytest.mark.parametrize("mode", ["rw", "99999", "0o644x"])
def test_parse_mode_refuses(mode):
    with pytest.raises(sf.StateFilesError):
        sf.parse_mode(mode, "files[0]")


def test_a_path_listed_twice_is_refused(tmp_path):
    with pytest.raises(sf.StateFilesError) as err:
        sf.plan_all([{"path": str(tmp_path)}], [{"path": str(tmp_path / "a"), "content": ""},
                                                {"path": str(tmp_path / "a/"), "content": ""}])
    assert "listed twice" in str(err.value)


def _append(path, record, keep=None):
    entry = {"path": str(path), "append": record}
    if keep is not None:
        entry["keep"] = keep
    plan = sf.plan_file(entry, 0)
    if plan["write"]:
        sf.write_atomically(plan, shutil.move)
    return plan


def test_a_history_keeps_the_last_records_one_per_line(tmp_path):
    path = tmp_path / "smoke-history.json"
    for n in range(5):
        assert _append(path, {"n": n, "tok_s": 1.5 * n}, keep=3)["write"]
    text = path.read_text()
    assert json.loads(text) == [{"n": 2, "tok_s": 3.0}, {"n": 3, "tok_s": 4.5}, {"n": 4, "tok_s": 6.0}]
    assert text.count("\n") == 5 and text.startswith("[\n{")


def test_a_history_does_not_add_the_last_record_again(tmp_path):
    path = tmp_path / "h.json"
    _append(path, {"t": "10:00"})
    assert not _append(path, {"t": "10:00"})["write"]
    assert _append(path, {"t": "10:05"})["write"]
    assert json.loads(path.read_text()) == [{"t": "10:00"}, {"t": "10:05"}]


@pytest.mark.parametrize("text,fragment", [("{\"a\": 1}", "a JSON dict, not a list"), ("not json", "is not JSON")])
def test_a_history_that_is_not_a_list_is_refused_and_left_alone(tmp_path, text, fragment):
    path = tmp_path / "h.json"
    path.write_text(text)
    with pytest.raises(sf.StateFilesError, match=fragment) as err:
        sf.plan_file({"path": str(path), "append": {"t": 1}}, 2)
    assert "files[2]" in str(err.value) and "move the file away" in str(err.value)
    assert path.read_text() == text


@pytest.mark.parametrize("entry", [{"content": "x", "append": {}}, {}])
def test_a_file_entry_takes_exactly_one_of_content_and_append(tmp_path, entry):
    with pytest.raises(sf.StateFilesError, match="exactly one of content"):
        sf.plan_file(dict(entry, path=str(tmp_path / "f")), 0)


@pytest.mark.parametrize("keep", [0, -1, "3", True])
def test_a_history_keep_must_be_a_whole_number_of_records(tmp_path, keep):
    with pytest.raises(sf.StateFilesError, match="keep"):
        sf.plan_file({"path": str(tmp_path / "h.json"), "append": {}, "keep": keep}, 0)
