"""Run the gaming playbook's roles against a throw-away Debian container (community.docker.docker).

No WSL2, GPU, Docker repository or NVIDIA repository exists here: the repositories' keys are served by a
local HTTP server (a real Debian archive key, so gpg checks a real fingerprint), Docker Desktop is simulated
by its marker paths, and nvidia-ctk plus the docker init script are stand-ins at the GPU boundary.
"""
import functools
import http.server
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from tests.support.docker_cli import BASE_IMAGE

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO_ROOT / "playbooks" / "gaming_host.yml"
# A real key with a known fingerprint, from Debian's archive keyring on this machine.
REAL_KEY = Path("/usr/share/keyrings/debian-archive-bookworm-stable.gpg")
REAL_KEY_FPR = "4D64FEC119C2029067D6E791F8D2585B8783D481"
# Another real key, appended to the expected one in a key file apt would then trust for both.
OTHER_REAL_KEY = Path("/usr/share/keyrings/debian-archive-trixie-stable.gpg")
OTHER_REAL_KEY_FPR = "41587F7DB8C774BCCF131416762F67A0B2C39DE4"
STANDINS = Path(__file__).resolve().parent / "standins"


def docker_ok():
    return shutil.which("docker") and subprocess.run(["docker", "image", "inspect", BASE_IMAGE],
                                                     capture_output=True).returncode == 0


pytestmark = pytest.mark.docker


@pytest.fixture(scope="session")
def key_server(tmp_path_factory):
    """HTTP server on the host network serving the key under both repositories' key names, and a
    file holding the key plus another one (expected-plus-another.gpg)."""
    root = tmp_path_factory.mktemp("keys")
    for name in ("docker.gpg", "nvidia.gpg"):
        shutil.copy(REAL_KEY, root / name)
    (root / "expected-plus-another.gpg").write_bytes(REAL_KEY.read_bytes() + OTHER_REAL_KEY.read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()


class Host:
    def __init__(self, name, tmp_path):
        self.name = name
        self.tmp_path = tmp_path

    def sh(self, script, check=True):
        proc = subprocess.run(["docker", "exec", self.name, "sh", "-c", script], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError("%s failed: %s%s" % (script, proc.stdout, proc.stderr))
        return proc

    def put(self, src, dest, mode="0755"):
        subprocess.run(["docker", "cp", str(src), "%s:%s" % (self.name, dest)], check=True)
        self.sh("chmod %s %s" % (mode, dest))

    def play(self, extra_vars=None, check=False, name="run", tags=None):
        """Run playbooks/gaming_host.yml against the container; returns (rc, output)."""
        inventory = self.tmp_path / ("inventory-%s.yml" % name)
        lines = ["all:", "  children:", "    gaming:", "      hosts:", "        %s:" % self.name,
                 "          ansible_connection: community.docker.docker",
                 "          ansible_python_interpreter: /usr/bin/python3", "          ansible_become: false"]
        for key, value in (extra_vars or {}).items():
            lines.append("          %s: %s" % (key, value if not isinstance(value, str) else '"%s"' % value))
        inventory.write_text("\n".join(lines) + "\n")
        cmd = ["ansible-playbook", "-i", str(inventory), str(PLAYBOOK), "--diff"] + (["--check"] if check else []) + (["--tags", tags] if tags else [])
        env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
                   ANSIBLE_CALLBACK_RESULT_FORMAT="json")
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO_ROOT), env=env, timeout=900)
        out = proc.stdout + proc.stderr
        (self.tmp_path / ("%s.log" % name)).write_text(out)
        return proc.returncode, out


TEST_IMAGE = "homelab-test-gaming:bookworm"


@pytest.fixture(scope="session")
def host_image():
    """The base image plus python3-apt, which Ubuntu ships and apt's check mode needs (built once)."""
    assert docker_ok(), "needs the Docker daemon and %s: run scripts/setup.sh" % BASE_IMAGE
    if subprocess.run(["docker", "image", "inspect", TEST_IMAGE], capture_output=True).returncode != 0:
        name = "homelab-gaming-build-%s" % uuid.uuid4().hex[:8]
        try:
            subprocess.run(["docker", "run", "--name", name, BASE_IMAGE, "sh", "-c",
                            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                            "--no-install-recommends python3-apt"], check=True, capture_output=True, timeout=600)
            subprocess.run(["docker", "commit", name, TEST_IMAGE], check=True, capture_output=True)
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    return TEST_IMAGE


@pytest.fixture
def host(tmp_path, host_image):
    name = "homelab-gaming-%s" % uuid.uuid4().hex[:8]
    subprocess.run(["docker", "run", "-d", "--name", name, "--network", "host", host_image, "sleep", "infinity"],
                   check=True, capture_output=True)
    try:
        yield Host(name, tmp_path)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def recap(out):
    """{'ok': n, 'changed': n, 'failed': n, ...} from the PLAY RECAP line."""
    for line in out.splitlines():
        if " : ok=" in line:
            return dict((k, int(v)) for k, v in (part.split("=") for part in line.split(":", 1)[1].split()))
    raise AssertionError("no PLAY RECAP in output:\n" + out[-3000:])
