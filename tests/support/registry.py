"""A real Docker registry on loopback for tests that must exercise a pull.

Debian's ``docker-registry`` package (distribution 2.8) serves the registry API from a
filesystem store; scripts/setup.sh installs it. The Docker daemon trusts loopback registries
without an insecure-registry setting, so ``127.0.0.1:PORT/name:tag`` pushes and pulls for real.
"""
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.support.docker_cli import run_docker

CONFIG = """version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manifest_digest(address, repository, tag):
    """The digest the registry at ``address`` holds for ``repository:tag`` (its Docker-Content-Digest header)."""
    req = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (address, repository, tag), method="HEAD",
                                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers["Docker-Content-Digest"]


class LocalRegistry:
    """``with LocalRegistry(tmp) as reg: reg.push("local/image:tag", "name:tag")``."""

    def __init__(self, workdir, port=None):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.proc = None

    def __enter__(self):
        binary = "/usr/bin/docker-registry"
        if not Path(binary).exists():
            raise AssertionError("%s is missing: install Debian's docker-registry package "
                                 "(scripts/setup.sh does)" % binary)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yml"
        config.write_text(CONFIG.format(root=self.workdir / "store", port=self.port))
        log = open(self.workdir / "registry.log", "w")
        self.proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen("http://%s/v2/" % self.address, timeout=2).read()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.3)
        self.__exit__(None, None, None)
        raise AssertionError("docker-registry did not answer on %s (log: %s)"
                             % (self.address, (self.workdir / "registry.log").read_text()[-2000:]))

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def ref(self, name):
        return "%s/%s" % (self.address, name)

    def push(self, local_image, name):
        """Push ``local_image`` as ``<registry>/<name>``; the extra local tag is removed afterwards."""
        target = self.ref(name)
        for args in (("tag", local_image, target), ("push", target), ("image", "rm", target)):
            run_docker(*args, timeout=300)
        return target
