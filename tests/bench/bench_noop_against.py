#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""The no-op stack play of this checkout against the same play of an earlier revision, in the same run.

bench_noop.py compares our play with community.docker's; on a shared machine its ratio moves by 0.1 from one
bench to the next, more than one change to the roles moves it. This one measures a change itself: a git worktree
of REV (given the ignored collections of this checkout: community.docker and friends) and this working tree run
``playbooks/stack.yml`` on the deployed local profile (``homelab_monitoring_enabled=false``, as bench_noop runs
it) in turn, N times each after a warm-up each; every measured run must report changed=0. Prints the median wall
time and CPU seconds of each and the ratio this/REV. No asserts on the figures (project rule); exit 1 when a run
fails or changes something. The worktree is removed at the end.

Usage: .venv/bin/python tests/bench/bench_noop_against.py REV [runs]   (default 5; the stack must be deployed:
bash scripts/deploy.sh; REV and this tree must deploy the same containers, or the first run is no no-op)
"""

import os
import statistics
import subprocess
import sys
import tempfile

from bench_noop import ROOT, run_play

PLAY = ["-i", os.environ.get("HOMELAB_INVENTORY", "inventories/local"), "playbooks/stack.yml",
        "-e", "homelab_monitoring_enabled=false"]


def git(*args):
    proc = subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit("git %s failed: %s" % (" ".join(args), proc.stderr.strip()))
    return proc.stdout.strip()


def add_worktree(rev, path):
    """REV checked out at ``path``, with this checkout's collections that git ignores (installed by setup.sh)."""
    git("worktree", "add", "--detach", path, rev)
    here = os.path.join(ROOT, "collections", "ansible_collections")
    there = os.path.join(path, "collections", "ansible_collections")
    for name in os.listdir(here):
        if not os.path.exists(os.path.join(there, name)):
            os.symlink(os.path.join(here, name), os.path.join(there, name))


def measure(roots, runs):
    """Each play N times in turn after a warm-up each: {label: [(wall, cpu)]}."""
    for label, root in roots.items():
        run_play(PLAY, "%s warm-up" % label, root)
    found = dict((label, []) for label in roots)
    for i in range(runs):
        for label, root in roots.items():
            wall, cpu, _ok, changed, _skipped = run_play(PLAY, "%s run %d" % (label, i + 1), root)
            if changed:
                sys.exit("%s run %d reported changed=%d: not a no-op" % (label, i + 1, changed))
            found[label].append((wall, cpu))
    return found


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rev, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5
    short = git("rev-parse", "--short", rev)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rev")
        add_worktree(rev, path)
        try:
            found = measure({"%s (REV)" % short: path, "this tree": ROOT}, runs)
        finally:
            git("worktree", "remove", "--force", path)
    medians = dict((label, (statistics.median(w for w, _c in v), statistics.median(c for _w, c in v)))
                   for label, v in found.items())
    print("no-op playbooks/stack.yml (monitoring off), %d runs each in turn (median wall time; CPU: user+sys of"
          " ansible-playbook and its children):" % runs)
    for label, (wall, cpu) in medians.items():
        walls = [w for w, _c in found[label]]
        print("  %-16s %6.2f s  (min %.2f, max %.2f); CPU %5.2f s" % (label, wall, min(walls), max(walls), cpu))
    (old_wall, old_cpu), (new_wall, new_cpu) = medians.values()
    print("ratio this tree / %s: wall %.2f, CPU %.2f" % (short, new_wall / old_wall, new_cpu / old_cpu))


if __name__ == "__main__":
    main()
