# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of homelab.ai.state_files: the folders and small files a role keeps on a host (local facts,
plan.json, the smoke report), made right in one module run instead of a file task per folder and a
copy task per file. A file is rewritten only when its content differs, atomically; the decision
(what would change) is separate from the writing so check mode and diff share it."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import stat
import tempfile

# Above this size a diff shows that the file changed, not its text.
DIFF_MAX_BYTES = 64 * 1024


class StateFilesError(Exception):
    def __init__(self, msg, changed_paths=()):
        super(StateFilesError, self).__init__(msg)
        self.changed_paths = list(changed_paths)  # what a failed apply_all had changed before


def parse_mode(mode, where):
    """An octal mode string ('0644') or int as an int; None stays None (the mode is left alone)."""
    if mode is None or mode == "":
        return None
    try:
        value = int(str(mode), 8)
    except ValueError:
        raise StateFilesError("%s: mode %r is not an octal mode such as '0644' or '0755'." % (where, mode))
    if value > 0o7777:
        raise StateFilesError("%s: mode %r is out of range." % (where, mode))
    return value


def _check_path(path, where):
    if not path or not os.path.isabs(path):
        raise StateFilesError("%s: path %r must be absolute." % (where, path))
    return os.path.normpath(path)


def _read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except (IOError, OSError):
        return None


def plan_directory(entry, index):
    """What a directory entry needs: {'path', 'create', 'mode' (int or None), ...}."""
    where = "directories[%d]" % index
    path = _check_path(entry.get("path"), where)
    if os.path.exists(path) and not os.path.isdir(path):
        raise StateFilesError("%s: %s exists and is not a directory: move it away or fix the path." % (where, path))
    return {"path": path, "create": not os.path.isdir(path), "mode": parse_mode(entry.get("mode"), where),
            "owner": entry.get("owner"), "group": entry.get("group")}


def plan_file(entry, index):
    """What a file entry needs: whether its content must be written, with before/after for a diff."""
    where = "files[%d]" % index
    path = _check_path(entry.get("path"), where)
    if os.path.isdir(path):
        raise StateFilesError("%s: %s is a directory: a file cannot be written there." % (where, path))
    content, append = entry.get("content"), entry.get("append")
    if (content is None) == (append is None):
        raise StateFilesError("%s (%s): give exactly one of content (the whole file) and append (one record of a "
                              "bounded history)." % (where, path))
    before = _read(path)
    if append is not None:
        data = bounded_history(before, append, entry.get("keep"), "%s (%s)" % (where, path))
    else:
        data = content.encode("utf-8") if not isinstance(content, bytes) else content
    return {"path": path, "data": data, "before": before, "write": before != data,
            "mode": parse_mode(entry.get("mode"), where), "owner": entry.get("owner"), "group": entry.get("group")}


def bounded_history(before, record, keep, where):
    """The history file's new bytes: its JSON list with `record` appended, the oldest dropped past `keep`.

    A record equal to the last one is not appended again (a retried task adds nothing). The file is one
    record per line, so it stays readable and diffs show what came and went. A file that is not a JSON
    list is refused, never replaced: it is somebody's data."""
    keep = 100 if keep is None else keep
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise StateFilesError("%s: keep %r must be a whole number of records, 1 or more." % (where, keep))
    records = []
    if before is not None and before.strip():
        try:
            records = json.loads(before.decode("utf-8"))
        except ValueError as exc:
            raise StateFilesError("%s: the history is not JSON (%s): move the file away to start a new one." % (where, exc))
        if not isinstance(records, list):
            raise StateFilesError("%s: the history is a JSON %s, not a list: move the file away to start a new one."
                                  % (where, type(records).__name__))
    if not records or records[-1] != record:
        records.append(record)
    records = records[-keep:]
    lines = ",\n".join(json.dumps(r, sort_keys=True) for r in records)
    return ("[\n%s\n]\n" % lines if records else "[]\n").encode("utf-8")


def plan_all(directories, files):
    """Every entry's plan, refusing a path listed twice (the second would silently win)."""
    dir_plans = [plan_directory(d, i) for i, d in enumerate(directories or [])]
    file_plans = [plan_file(f, i) for i, f in enumerate(files or [])]
    seen = set()
    for p in dir_plans + file_plans:
        if p["path"] in seen:
            raise StateFilesError("%s is listed twice: give each path one entry." % p["path"])
        seen.add(p["path"])
    return dir_plans, file_plans


def _text_for_diff(data):
    if data is None:
        return ""
    if len(data) > DIFF_MAX_BYTES:
        return "(%d bytes)\n" % len(data)
    return data.decode("utf-8", "replace")


def file_diff(plan):
    return {"before_header": plan["path"], "after_header": plan["path"],
            "before": _text_for_diff(plan["before"]), "after": _text_for_diff(plan["data"])}


def write_atomically(plan, atomic_move):
    """Write the new content beside the file and move it over the old one (never a half-written file)."""
    folder = os.path.dirname(plan["path"])
    fd, tmp = tempfile.mkstemp(prefix=".state_files.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(plan["data"])
        mode = plan["mode"]
        if mode is None:
            mode = stat.S_IMODE(os.stat(plan["path"]).st_mode) if plan["before"] is not None else 0o644
        os.chmod(tmp, mode)
        atomic_move(tmp, plan["path"])
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def apply_attributes(module, plan, changed):
    """mode, owner and group of one path, each only when given; True when one changed (or would)."""
    if not os.path.exists(plan["path"]):
        return changed  # check mode: the path is not there yet, and creating it is already a change
    if plan["mode"] is not None:
        changed = module.set_mode_if_different(plan["path"], plan["mode"], changed)
    if plan["owner"]:
        changed = module.set_owner_if_different(plan["path"], plan["owner"], changed)
    if plan["group"]:
        changed = module.set_group_if_different(plan["path"], plan["group"], changed)
    return changed


def apply_all(module, dir_plans, file_plans):
    """Make the planned folders and files right (nothing in check mode): the module's result, changed and
    changed_paths, with one diff per rewritten file in diff mode.

    Raises StateFilesError, with ``changed_paths`` set to what changed before, when a file's folder is
    missing and not listed among the directories."""
    changed_paths, diffs = [], []
    for plan in dir_plans:
        if plan["create"] and not module.check_mode:
            os.makedirs(plan["path"], plan["mode"] if plan["mode"] is not None else 0o777)
        if apply_attributes(module, plan, plan["create"]):
            changed_paths.append(plan["path"])
    for plan in file_plans:
        if plan["write"]:
            diffs.append(file_diff(plan))
            if not module.check_mode:
                folder = os.path.dirname(plan["path"])
                if not os.path.isdir(folder):
                    raise StateFilesError("the folder of %s does not exist: list %s in directories or create it "
                                          "first." % (plan["path"], folder), changed_paths)
                write_atomically(plan, module.atomic_move)
        if apply_attributes(module, plan, plan["write"]):
            changed_paths.append(plan["path"])
    result = dict(changed=bool(changed_paths), changed_paths=changed_paths)
    if module._diff:
        result["diff"] = diffs
    return result
