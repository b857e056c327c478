# -*- coding: utf-8 -*-
"""vllm_plan's write_files, run for real (`ansible localhost -m`): the plan and the files it is served from
in one module run - written once, rewritten only when they differ, previewed in check mode, and never
written for a plan the planner refuses; or, deferred, returned for the rollout to write once vLLM serves."""
import json
import os
import sys

from conftest import run_module

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections", "ansible_collections", "homelab",
                                 "ai", "tests", "unit", "plugins", "module_utils"))
from inventory_models import LOCAL, inventory_model  # noqa: E402  pylint: disable=wrong-import-position

WSL = {"is_wsl": False, "wsl_version": None, "kernel_release": "6.1.0", "pin_memory": True}


def plan(tmp_path, check=False, **extra):
    args = dict(name="tiny-qwen2", models={"tiny-qwen2": inventory_model(LOCAL, "tiny-qwen2")}, gpus=[], wsl=WSL,
                vllm_version="0.32.0",
                write_files={"state_dir": str(tmp_path / "vllm"), "status_dir": str(tmp_path / "status"),
                             "image": "homelab/vllm-cpu:0.32.0", "extra_args": ["--seed", "7"],
                             "extra_env": {"VLLM_LOGGING_LEVEL": "DEBUG"}})
    args.update(extra)
    return run_module("vllm_plan", args, check=check, diff=True)


def read(path):
    return json.loads(path.read_text())


def test_the_files_are_written_once_and_rewritten_only_when_they_differ(tmp_path):
    preview = plan(tmp_path, check=True)
    assert preview["changed"] and len(preview["diff"]) == 3 and not (tmp_path / "vllm").exists(), preview

    first = plan(tmp_path)
    assert first["changed"] and len(first["changed_paths"]) == 5, first   # two folders, three files
    planned = first["plan"]
    launch = read(tmp_path / "vllm" / "launch.json")
    assert launch["args"] == planned["args"] + ["--seed", "7"] and launch["image"] == "homelab/vllm-cpu:0.32.0"
    assert launch["env"]["VLLM_LOGGING_LEVEL"] == "DEBUG" and launch["device"] == planned["device"] == "cpu"
    on_page = read(tmp_path / "status" / "plan.json")
    assert "replan" not in on_page and on_page == dict((k, v) for k, v in planned.items() if k != "replan")
    models = read(tmp_path / "vllm" / "models.json")
    assert models["tiny-qwen2"]["default_context"] == planned["max_model_len"], models

    again = plan(tmp_path)
    assert not again["changed"] and again["changed_paths"] == [] and again["diff"] == [], again

    (tmp_path / "vllm" / "launch.json").write_text("{}\n")
    restored = plan(tmp_path)
    assert restored["changed_paths"] == [str(tmp_path / "vllm" / "launch.json")], restored
    assert read(tmp_path / "vllm" / "launch.json") == launch


def test_a_refused_plan_writes_nothing_and_no_write_files_writes_nothing(tmp_path):
    refused = plan(tmp_path, max_model_len="100000")
    assert refused.get("failed") and "above the model's maximum" in refused["msg"], refused
    assert not (tmp_path / "vllm").exists() and not (tmp_path / "status").exists()

    computed = plan(tmp_path, write_files=None)
    assert not computed.get("failed") and not computed["changed"] and "changed_paths" not in computed, computed
    assert os.listdir(str(tmp_path)) == []


def test_a_state_dir_that_is_a_file_is_refused_by_name(tmp_path):
    (tmp_path / "vllm").write_text("not a folder")
    result = plan(tmp_path)
    assert result.get("failed") and "write_files: directories[0]: %s exists and is not a directory" % (tmp_path / "vllm") \
        in result["msg"], result


def test_deferred_files_are_returned_not_written_and_are_what_would_be_written(tmp_path):
    write = {"state_dir": str(tmp_path / "vllm"), "status_dir": str(tmp_path / "status"),
             "image": "homelab/vllm-cpu:0.32.0", "extra_args": ["--seed", "7"], "extra_env": {"VLLM_LOGGING_LEVEL": "DEBUG"}}
    deferred = plan(tmp_path, write_files=dict(write, defer=True))
    assert not deferred.get("failed") and not deferred["changed"] and "changed_paths" not in deferred, deferred
    assert os.listdir(str(tmp_path)) == []   # nothing written: the rollout writes them once vLLM serves

    returned = deferred["state_files"]
    assert [d["path"] for d in returned["directories"]] == [write["state_dir"], write["status_dir"]]
    written = plan(tmp_path, write_files=write)
    assert sorted(written["changed_paths"]) == sorted([d["path"] for d in returned["directories"]]
                                                     + [f["path"] for f in returned["files"]]), written
    for entry in returned["files"]:
        with open(entry["path"]) as handle:
            assert handle.read() == entry["content"], entry["path"]   # the same bytes as written
    # state_files takes them as they are: nothing left to change.
    again = run_module("state_files", returned)
    assert not again.get("failed") and not again["changed"], again


def test_deferred_files_are_checked_before_they_are_returned(tmp_path):
    (tmp_path / "vllm").write_text("not a folder")
    result = plan(tmp_path, write_files={"state_dir": str(tmp_path / "vllm"), "status_dir": str(tmp_path / "status"),
                                         "image": "homelab/vllm-cpu:0.32.0", "defer": True})
    assert result.get("failed") and "exists and is not a directory" in result["msg"], result
