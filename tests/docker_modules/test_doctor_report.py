"""homelab.ai.doctor_report against the real daemon: containers that serve, crash-loop and stopped, with
a key and addresses planted in their logs. Each planted value is known to the module only the way a
real one would be (a file under the state directory's secrets/, a container's credential variable, the
host's address in its facts, or nothing but its shape), and none of them may appear anywhere in the
report the module returns, the Markdown included."""
import json
import time

import pytest

from conftest import BASE_IMAGE, docker, run_module

STATE_KEY = "StateDirKey0planted0" + "x" * 20   # only in <state_dir>/secrets/vllm_api_key
ENV_KEY = "EnvKey0planted0" + "y" * 25           # only in the container's VLLM_API_KEY
HOST_ADDRESS = "198.51.100.23"                   # the host's own address, as its facts list it
OTHER_ADDRESS = "203.0.113.9"                    # nobody told the module: caught by its shape
HOST_NAME = "gaming-pc.lan"                      # the inventory's ansible_host
PLANTED = (STATE_KEY, ENV_KEY, HOST_ADDRESS, OTHER_ADDRESS, HOST_NAME)


def wait_for(what, check, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError("timed out waiting for " + what)


def inspect(name):
    return json.loads(docker("inspect", name))[0]


@pytest.fixture(scope="module")
def stack(prefix, tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    (state / "secrets").mkdir()
    (state / "secrets" / "vllm_api_key").write_text(STATE_KEY + "\n")
    (state / "status").mkdir()
    (state / "status" / "plan.json").write_text(json.dumps({"model": "tiny", "device": "cpu", "vllm_version": "0.32.0"}))
    serving = ("echo 'INFO serving on %s (%s)'; echo 'ERROR 401: a client sent %s, expected %s'; "
               "echo 'ERROR upstream %s refused'; exec sleep 600" % (HOST_ADDRESS, HOST_NAME, STATE_KEY, ENV_KEY, OTHER_ADDRESS))
    docker("run", "-d", "--name", prefix + "-svc", "-e", "VLLM_API_KEY=" + ENV_KEY, BASE_IMAGE, "sh", "-c", serving)
    docker("run", "-d", "--name", prefix + "-crash", "--restart", "on-failure:2", BASE_IMAGE, "sh", "-c",
           "echo 'RuntimeError: CUDA error: out of memory'; exit 1")
    docker("run", "-d", "--name", prefix + "-stopped", BASE_IMAGE, "sh", "-c", "echo 'last words before exit'; exit 3")
    wait_for("the crash loop to give up after 2 restarts",
             lambda: inspect(prefix + "-crash")["RestartCount"] == 2 and not inspect(prefix + "-crash")["State"]["Running"])
    wait_for("the stopped container", lambda: not inspect(prefix + "-stopped")["State"]["Running"])
    wait_for("the serving container's log", lambda: "refused" in docker("logs", prefix + "-svc"))
    return state


def doctor(prefix, state, **extra):
    check = extra.pop("_check", False)
    args = {"state_dir": str(state), "container_prefix": prefix + "-", "addresses": [HOST_NAME],
            "facts": {"all_ipv4_addresses": [HOST_ADDRESS], "kernel": "6.6.87.2-microsoft-standard-WSL2"},
            "versions": {"ansible (controller)": "2.19"}, "generated_at": "2026-12-05T21:00:00Z"}
    args.update(extra)
    return run_module("doctor_report", args, check=check)


def test_no_planted_secret_or_address_reaches_the_output(prefix, stack):
    res = doctor(prefix, stack)
    assert not res.get("failed"), res
    # What the module returns (the invocation echo of its own arguments aside): what the role writes.
    returned = json.dumps({k: res[k] for k in ("markdown", "report", "summary")})
    for planted in PLANTED:
        assert planted not in returned, "%s leaked into the doctor's report" % planted
    svc = next(c for c in res["report"]["containers"] if c["name"] == prefix + "-svc")
    # Redacted by the module (Ansible's no_log masking would read ********): each where it was.
    assert svc["log_errors"][0].endswith("ERROR 401: a client sent <redacted:secret>, expected <redacted:secret>")
    assert svc["log_errors"][1].endswith("ERROR upstream <redacted:address> refused")
    assert res["report"]["redactions"]["secrets"] >= 2 and res["report"]["redactions"]["addresses"] >= 1
    assert "6.6.87.2-microsoft-standard-WSL2" in res["markdown"]


def test_states_restart_counts_exit_codes_and_last_words(prefix, stack):
    res = doctor(prefix, stack)
    by_name = {c["name"]: c for c in res["report"]["containers"]}
    assert sorted(by_name) == [prefix + "-crash", prefix + "-stopped", prefix + "-svc"]
    assert (by_name[prefix + "-svc"]["status"], by_name[prefix + "-svc"]["restart_count"]) == ("running", 0)
    crash = by_name[prefix + "-crash"]
    assert (crash["status"], crash["restart_count"], crash["exit_code"]) == ("exited", 2, 1)
    assert crash["log_errors"][-1].endswith("RuntimeError: CUDA error: out of memory")
    stopped = by_name[prefix + "-stopped"]
    assert stopped["exit_code"] == 3 and stopped["log_errors"] == [] and stopped["log_tail"][-1].endswith("last words before exit")
    assert "- containers: 3, not running: %s-crash, %s-stopped" % (prefix, prefix) in res["summary"][0]
    assert "restarts: 2" in res["summary"][0]
    assert "| docker engine |" in res["markdown"] and "| vllm (planned) | 0.32.0 |" in res["markdown"]


def test_check_mode_reads_the_same_and_changes_nothing(prefix, stack):
    res = doctor(prefix, stack, _check=True)
    assert not res["changed"] and len(res["report"]["containers"]) == 3


def test_a_daemon_that_is_down_is_a_finding_not_a_failure(prefix, stack):
    res = doctor(prefix, stack, docker_host="unix:///nonexistent/docker.sock")
    assert not res.get("failed") and not res["changed"]
    assert res["report"]["problems"][0].startswith("Docker: Cannot reach the Docker daemon at unix:///nonexistent/docker.sock")
    assert "- problem: Docker: Cannot reach" in res["markdown"]
