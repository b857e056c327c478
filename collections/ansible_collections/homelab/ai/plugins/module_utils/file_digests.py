# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sha256 of a build input, remembered for big files by what stat() says of them.

A no-op image_build hashed the local profile's 190 MB torch wheel on every run (0.15 s of CPU, the
biggest single cost of its module run) to find what it found last time. Git's index answers the
same question the same way: a file whose device, inode, size, mtime and ctime are what they were
when it was hashed has the bytes it had then. ctime cannot be set from user space and moves on
every write, so an edit, a copy over it or a ``touch`` makes the file hashed again. A file changed
less than SETTLED_NS before it was hashed is hashed but not remembered: a second write within the
filesystem's timestamp granularity could leave all five values as they were ("racily clean" in
git's words).

The record is one JSON file in image_build's state_dir (beside its locks), written atomically and
only by a real run; a record that cannot be read is ignored and rewritten. It only ever saves a
read: the hash of an input is the same with or without it.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import json
import os
import tempfile
import time

FILE_DIGESTS_NAME = "file-digests.json"
# Smaller files cost less to hash than to look up.
MIN_SIZE = 1024 * 1024
SETTLED_NS = 2 * 10 ** 9
_SCHEME = "homelab.ai/file-digests/v1"


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def _identity(st):
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class FileDigests:
    """file_sha256() with a record of the big files' digests in ``record_path`` (None: no record)."""

    def __init__(self, record_path=None, clock_ns=None):
        self.record_path, self.clock_ns = record_path, clock_ns or time.time_ns
        self.files, self.dirty = None, False  # the record is read when the first big file is met
        self.hashed, self.remembered = [], []  # what this run read, and what it took from the record

    @staticmethod
    def _load(record_path):
        try:
            with open(record_path, "r") as fh:
                doc = json.load(fh)
        except (TypeError, OSError, ValueError):
            return {}
        if not isinstance(doc, dict) or doc.get("scheme") != _SCHEME or not isinstance(doc.get("files"), dict):
            return {}
        return doc["files"]

    def digest(self, path):
        """The file's sha256 hex digest; read from the record when the file is as it was when hashed."""
        path = os.path.abspath(path)
        st = os.stat(path)
        if self.record_path is None or st.st_size < MIN_SIZE:
            return file_sha256(path)
        if self.files is None:
            self.files = self._load(self.record_path)
        known = self.files.get(path)
        if isinstance(known, dict) and known.get("stat") == _identity(st):
            self.remembered.append(path)
            return known["sha256"]
        before = self.clock_ns()
        digest = file_sha256(path)
        self.hashed.append(path)
        if st.st_ctime_ns < before - SETTLED_NS and _identity(os.stat(path)) == _identity(st):
            self.files[path] = {"stat": _identity(st), "sha256": digest}
            self.dirty = True
        elif path in self.files:
            del self.files[path]
            self.dirty = True
        return digest

    def save(self):
        """Write the record when this run added to it, dropping files that are gone. Atomic (a temporary
        file renamed over it); a state_dir that cannot be written only costs the next run a read."""
        if not self.dirty or self.record_path is None:
            return False
        kept = dict((path, entry) for path, entry in self.files.items() if os.path.exists(path))
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".file-digests.", dir=os.path.dirname(self.record_path))
            with os.fdopen(fd, "w") as fh:
                json.dump({"scheme": _SCHEME, "files": kept}, fh, sort_keys=True)
            os.replace(tmp, self.record_path)
        except OSError:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
            return False
        self.dirty = False
        return True
