"""homelab.ai.state_files run for real (`ansible localhost -m`, the runner of this folder; it needs no
Docker): folders and files made in one run, nothing rewritten on a second, check mode and diff say what
would change and change nothing, modes applied, bad entries refused by name."""
import os
import stat

from conftest import run_module


def entries(tmp_path, report="v1"):
    return {
        "directories": [{"path": str(tmp_path / "state" / "status"), "mode": "0750"},
                        {"path": str(tmp_path / "facts")}],
        "files": [{"path": str(tmp_path / "state" / "status" / "report.json"), "content": '{"r": "%s"}\n' % report,
                   "mode": "0640"},
                  {"path": str(tmp_path / "facts" / "homelab.fact"), "content": "{}\n"}],
    }


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_one_run_makes_folders_and_files_and_a_second_changes_nothing(tmp_path):
    preview = run_module("state_files", entries(tmp_path), check=True, diff=True)
    assert preview["changed"] and not (tmp_path / "state").exists(), preview
    assert len(preview["changed_paths"]) == 4 and len(preview["diff"]) == 2, preview

    first = run_module("state_files", entries(tmp_path))
    assert first["changed"] and len(first["changed_paths"]) == 4, first
    report = tmp_path / "state" / "status" / "report.json"
    assert report.read_text() == '{"r": "v1"}\n' and mode(report) == 0o640
    assert mode(tmp_path / "state" / "status") == 0o750 and mode(tmp_path / "facts" / "homelab.fact") == 0o644

    again = run_module("state_files", entries(tmp_path), diff=True)
    assert not again["changed"] and again["changed_paths"] == [] and again["diff"] == [], again

    inode = os.stat(report).st_ino
    changed = run_module("state_files", entries(tmp_path, report="v2"), diff=True)
    assert changed["changed_paths"] == [str(report)], changed
    assert changed["diff"][0]["before"] == '{"r": "v1"}\n' and changed["diff"][0]["after"] == '{"r": "v2"}\n'
    assert report.read_text() == '{"r": "v2"}\n' and os.stat(report).st_ino != inode   # moved into place
    assert [p for p in os.listdir(report.parent) if p.startswith(".state_files.")] == []

    os.chmod(report, 0o600)
    fixed = run_module("state_files", entries(tmp_path, report="v2"))
    assert fixed["changed_paths"] == [str(report)] and mode(report) == 0o640, fixed


def test_bad_entries_are_refused_by_name(tmp_path):
    relative = run_module("state_files", {"files": [{"path": "status/report.json", "content": "x"}]})
    assert relative.get("failed") and "files[0]: path 'status/report.json' must be absolute" in relative["msg"], relative
    (tmp_path / "afile").write_text("x")
    not_dir = run_module("state_files", {"directories": [{"path": str(tmp_path / "afile")}]})
    assert not_dir.get("failed") and "exists and is not a directory" in not_dir["msg"], not_dir
    twice = run_module("state_files", {"files": [{"path": str(tmp_path / "a"), "content": "1"},
                                                 {"path": str(tmp_path / "a"), "content": "2"}]})
    assert twice.get("failed") and "listed twice" in twice["msg"] and (tmp_path / "afile").exists(), twice
    no_folder = run_module("state_files", {"files": [{"path": str(tmp_path / "missing" / "a"), "content": "1"}]})
    assert no_folder.get("failed") and "list %s in directories" % (tmp_path / "missing") in no_folder["msg"], no_folder
    bad_mode = run_module("state_files", {"files": [{"path": str(tmp_path / "b"), "content": "1", "mode": "rw"}]})
    assert bad_mode.get("failed") and "mode 'rw' is not an octal mode" in bad_mode["msg"], bad_mode
