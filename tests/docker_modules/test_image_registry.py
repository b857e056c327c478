"""homelab.ai.image_build with the homelab's registry, against the real daemon and a real registry (Debian's
docker-registry on loopback): the builder pushes after the check passes and names the image by digest; a run
that changes nothing pushes nothing; a failed check pushes nothing; a host in pull mode builds nothing and
pulls that digest; a registry without the tag fails naming the builder."""
import json

from conftest import BASE_IMAGE, docker, image_id, run_module
from tests.support.registry import LocalRegistry, manifest_digest


def test_the_builder_pushes_once_and_a_pull_host_runs_the_same_digest(prefix, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM %s\nRUN echo v1 > /version\n" % BASE_IMAGE)
    name = prefix + "-reg:latest"
    with LocalRegistry(tmp_path / "registry") as reg:
        push = {"address": reg.address, "project": "homelab", "mode": "push"}
        repository = "%s/homelab/%s-reg" % (reg.address, prefix)

        preview = run_module("image_build", {"name": name, "path": str(ctx), "registry": push}, check=True)
        assert preview["changed"] and preview["image_ref"] is None and preview["pushed"] == repository + ":latest"

        first = run_module("image_build", {"name": name, "path": str(ctx), "registry": push,
                                           "check_command": ["cat", "/version"]})
        assert first["changed"] and first["built"] and first["pushed"] == repository + ":latest", first
        digest = manifest_digest(reg.address, "homelab/%s-reg" % prefix, "latest")
        assert first["image_ref"] == "%s@%s" % (repository, digest)

        again = run_module("image_build", {"name": name, "path": str(ctx), "registry": push})
        assert not again["changed"] and again["pushed"] is None and again["image_ref"] == first["image_ref"], again

        (ctx / "Dockerfile").write_text("FROM %s\nRUN echo v2 > /version\n" % BASE_IMAGE)
        refused = run_module("image_build", {"name": name, "path": str(ctx), "registry": push,
                                             "check_command": ["sh", "-c", "exit 3"]})
        assert refused.get("failed"), refused
        assert manifest_digest(reg.address, "homelab/%s-reg" % prefix, "latest") == digest  # nothing pushed

        # A host that does not build: the builder's image, by digest, pulled for real.
        docker("image", "rm", "-f", name, first["image_ref"], repository + ":latest", check=False)
        assert image_id(first["image_ref"]) is None
        pull = dict(push, mode="pull")
        pulled = run_module("image_build", {"name": name, "path": str(ctx), "registry": pull})
        assert pulled["changed"] and not pulled["built"] and pulled["pulled"] == first["image_ref"], pulled
        assert pulled["image_ref"] == first["image_ref"] and pulled["image_id"] == first["image_id"]
        assert docker("run", "--rm", pulled["image_ref"], "cat", "/version") == "v1"
        assert not run_module("image_build", {"name": name, "path": str(ctx), "registry": pull})["changed"]

        missing = run_module("image_build", {"name": prefix + "-never:1", "path": str(ctx), "registry": pull})
        assert missing.get("failed") and "holds no %s/homelab/%s-never:1" % (reg.address, prefix) in missing["msg"]
        assert "registry.mode push" in missing["msg"], missing

        wrong = run_module("image_build", {"name": name, "path": str(ctx),
                                           "registry": {"address": "http://%s" % reg.address, "mode": "push"}})
        assert wrong.get("failed") and "is not a registry host[:port]" in wrong["msg"], wrong
        half = run_module("image_build", {"name": name, "path": str(ctx),
                                          "registry": {"address": reg.address, "username": "robot$homelab"}})
        assert half.get("failed") and "go together" in half["msg"], half
        docker("image", "rm", "-f", pulled["image_ref"], check=False)
        print(json.dumps({"image_ref": first["image_ref"]}))
