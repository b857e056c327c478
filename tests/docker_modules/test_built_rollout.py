"""homelab.ai.container_rollout with O(build) against the real Docker daemon: one module run builds (image_build's
inputs hash and check gate) and rolls out what it built; a second run changes nothing; a build whose check fails
rolls nothing out and leaves the running container and the tag as they were; check mode before the first build
previews instead of failing on the missing image; a controller src is read by the action plugin."""
import pytest

from conftest import BASE_IMAGE, docker, image_id, run_module

APP_V1 = "import time\nprint('v1', flush=True)\ntime.sleep(100000)\n"


@pytest.fixture(scope="module")
def controller_dockerfile(tmp_path_factory):
    path = tmp_path_factory.mktemp("built-rollout") / "Dockerfile"
    path.write_text("FROM %s\nCOPY app.py /app.py\nCMD [\"python3\", \"/app.py\"]\n" % BASE_IMAGE)
    return str(path)


def args(prefix, dockerfile, app=APP_V1, check_command=None, tmp=None):
    build = {"name": prefix + "-built:latest",
             "files": [{"dest": "Dockerfile", "src": dockerfile}, {"dest": "app.py", "content": app}],
             "check_command": check_command or ["python3", "-c", "import ast; ast.parse(open('/app.py').read())"]}
    return {"name": prefix + "-svc", "build": build, "state_dir": str(tmp), "stable_seconds": 1, "health_timeout": 60,
            "init": True}


def container_id(name):
    return docker("inspect", "-f", "{{.Id}}", name, check=False) or None


def test_one_run_builds_and_rolls_out_then_changes_nothing(prefix, controller_dockerfile, tmp_path):
    image, container = prefix + "-built:latest", prefix + "-svc"

    preview = run_module("container_rollout", args(prefix, controller_dockerfile, tmp=tmp_path), check=True, diff=True)
    assert preview["changed"] and not preview.get("failed"), preview
    assert preview["build"]["changed"] and not preview["build"]["built"], preview["build"]
    assert "would build %s" % image in preview["actions"][0], preview["actions"]
    assert image_id(image) is None and container_id(container) is None   # check mode built and ran nothing

    first = run_module("container_rollout", args(prefix, controller_dockerfile, tmp=tmp_path), diff=True)
    assert first["changed"] and first["build"]["built"], first
    assert first["build"]["image_id"] == image_id(image) == first["image_id"]
    assert docker("inspect", "-f", "{{.State.Running}}", container) == "true"
    assert docker("logs", container) == "v1"
    assert isinstance(first["diff"], list) and len(first["diff"]) == 2   # the build's and the rollout's

    again = run_module("container_rollout", args(prefix, controller_dockerfile, tmp=tmp_path))
    assert not again["changed"] and not again["build"]["changed"] and not again["build"]["built"], again
    assert container_id(container) == first["container"]["id"]


def test_a_failing_check_rolls_nothing_out(prefix, controller_dockerfile, tmp_path):
    image, container = prefix + "-built:latest", prefix + "-svc"
    if container_id(container) is None:
        run_module("container_rollout", args(prefix, controller_dockerfile, tmp=tmp_path))
    serving, tagged = container_id(container), image_id(image)

    broken = run_module("container_rollout", args(prefix, controller_dockerfile, app="print('v2'\n", tmp=tmp_path))
    assert broken.get("failed"), broken
    assert "Nothing was rolled out: container %s was left as it was." % container in broken["msg"], broken["msg"]
    assert broken.get("stage") == "build", broken
    assert container_id(container) == serving and image_id(image) == tagged
    assert docker("inspect", "-f", "{{.State.Running}}", container) == "true"


def test_build_is_refused_where_it_cannot_apply(prefix, controller_dockerfile, tmp_path):
    both = dict(args(prefix, controller_dockerfile, tmp=tmp_path), image=BASE_IMAGE)
    refused = run_module("container_rollout", both)
    assert refused.get("failed") and "mutually exclusive" in refused["msg"] and "build" in refused["msg"], refused

    absent = dict(args(prefix, controller_dockerfile, tmp=tmp_path), state="absent")
    refused = run_module("container_rollout", absent)
    assert refused.get("failed") and "build applies to state=started only" in refused["msg"], refused

    missing = args(prefix, "/nonexistent/Dockerfile", tmp=tmp_path)
    refused = run_module("container_rollout", missing)
    assert refused.get("failed") and refused["msg"].startswith("build: files[0] (dest Dockerfile)"), refused
