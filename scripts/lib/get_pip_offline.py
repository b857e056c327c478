"""Stand-in for ansible-test's get-pip bootstrap script, which it downloads from a host that
is not reachable here. ansible-test runs this file with pip-style options; we run pip from a
locally downloaded wheel with `install` and those options instead. setup.sh copies it to
~/.ansible/test/cache/get_pip_<version>.py beside the wheel."""
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
wheels = sorted(glob.glob(os.path.join(HERE, "pip-*-py3-none-any.whl")))
if not wheels:
    sys.exit("get_pip stand-in: no pip wheel beside %s; rerun scripts/setup.sh" % HERE)
sys.path.insert(0, wheels[-1])

from pip._internal.cli.main import main as pip_main  # noqa: E402  (import after sys.path)

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(pip_main(["install"] + args))
