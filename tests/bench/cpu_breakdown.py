#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Where one ansible-playbook run spends its CPU: the main process, each task's worker, the modules.

Usage: python tests/bench/cpu_breakdown.py OUT.json PLAYBOOK-ARGS...   (run with the venv's python)

Runs ansible-playbook in this process with ansible-core's worker wrapped (``WorkerProcess._run``, a private
name of ansible-core 2.19: this is a measuring aid, not part of the collection). Each task's worker writes
its own user+sys seconds (templating, building a module's payload, the connection) and its children's (the
module's interpreter and the shells around it); the main process writes its own at the end (start-up,
parsing, the strategy loop). OUT.json gets {"main": s, "workers": [{"task", "self", "children"}...]}.
bench_noop.py calls it after its timed runs.
"""

import json
import os
import resource
import sys


def cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main():
    out, args = sys.argv[1], sys.argv[2:]
    from ansible.executor.process import worker  # pylint: disable=import-outside-toplevel
    from ansible.cli.playbook import main as playbook_main  # pylint: disable=import-outside-toplevel
    run_task = worker.WorkerProcess._run  # pylint: disable=protected-access

    def measured(self):
        try:
            return run_task(self)
        finally:
            with open(out + ".workers", "a") as handle:
                handle.write(json.dumps({"task": self._task.get_name(), "self": cpu(resource.RUSAGE_SELF),  # pylint: disable=protected-access
                                         "children": cpu(resource.RUSAGE_CHILDREN)}) + "\n")

    worker.WorkerProcess._run = measured  # pylint: disable=protected-access
    sys.argv = ["ansible-playbook"] + args
    code = 0
    try:
        playbook_main()
    except SystemExit as exc:
        code = exc.code or 0
    workers = []
    if os.path.exists(out + ".workers"):
        with open(out + ".workers") as handle:
            workers = [json.loads(line) for line in handle]
        os.unlink(out + ".workers")
    with open(out, "w") as handle:
        json.dump({"main": cpu(resource.RUSAGE_SELF), "workers": workers, "rc": code}, handle)
    sys.exit(code)


if __name__ == "__main__":
    main()
