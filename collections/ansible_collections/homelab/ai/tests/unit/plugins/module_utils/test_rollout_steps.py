# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout's stages through run_container_rollout's client factory, against the stateful
stand-in daemon in fake_docker.py: replacement, the kept rollback container, rollback, the paths an
interrupted run leaves (journal + parked container), the lock, signals, validation before anything
is touched. The real daemon runs the same paths in molecule/rollout_faults."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import signal

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import container_rollout as cr
from ansible_collections.homelab.ai.plugins.module_utils.docker_common import HomelabDockerError
from ansible_collections.homelab.ai.plugins.module_utils.host_lock import HostLock, LockTimeout

from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.fake_docker import FakeDockerClient, factory

NAME = "svc"


@pytest.fixture
def docker(monkeypatch):
    client = FakeDockerClient()
    monkeypatch.setattr(cr, "time", client.clock)
    return client


@pytest.fixture
def params(tmp_path):
    def make(image="app:1", **extra):
        p = {"name": NAME, "image": image, "ports": ["127.0.0.1:8000:8000"], "restart_policy": "unless-stopped",
             "healthcheck": {"test": "true", "interval": "1s"}, "health_timeout": 30, "stable_seconds": 2,
             "state_dir": str(tmp_path / "state"), "lock_timeout": 1}
        p.update(extra)
        return p
    return make


def run(client, p, check=False):
    return cr.run_container_rollout(p, check_mode=check, client_factory=factory(client))


def journal_of(client, p):
    rollout = cr.Rollout(p, client_factory=factory(client))
    return rollout.journal


def status(client, name):
    c = client.by_name(name)
    return None if c is None else client.inspect_container(c["Id"])["State"]["Status"]


def deployed(client, p, image_ref, behaviour="healthy"):
    client.add_image(image_ref, behaviour=behaviour)
    return run(client, dict(p, image=image_ref))


# ---- replacement and the kept rollback container ----------------------------------------------

def test_first_run_creates_second_changes_nothing(docker, params):
    docker.add_image("app:1")
    first = run(docker, params())
    assert first["changed"] and first["container"]["status"] == "running"
    creates = [c for c in docker.calls if c[0] == "create_container"]
    second = run(docker, params())
    assert not second["changed"] and second["actions"] == []
    assert [c for c in docker.calls if c[0] == "create_container"] == creates
    assert docker.container_names() == [NAME]
    assert journal_of(docker, params()).read() is None


def test_created_container_has_bounded_logs_init_and_limits(docker, params):
    docker.add_image("app:1")
    run(docker, params(memory="2g", pids_limit=256))
    host = docker.by_name(NAME)["HostConfig"]
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    assert host["Init"] is True and host["PidsLimit"] == 256 and host["Memory"] == 2 * 1024 ** 3


def test_replacement_keeps_exactly_one_rollback_container_stopped(docker, params):
    deployed(docker, params(), "app:1")
    first_id = docker.by_name(NAME)["Id"]
    deployed(docker, params(), "app:2")
    assert docker.container_names() == [NAME, NAME + "-rollback"]
    kept = docker.by_name(NAME + "-rollback")
    assert kept["Id"] == first_id and status(docker, NAME + "-rollback") == "exited"
    # Parked containers must not come back by themselves after a daemon restart or a reboot.
    assert kept["HostConfig"]["RestartPolicy"]["Name"] == "no"   # said explicitly: dockerd ignores ""
    second_id = docker.by_name(NAME)["Id"]
    deployed(docker, params(), "app:3")
    assert docker.container_names() == [NAME, NAME + "-rollback"]
    assert docker.by_name(NAME + "-rollback")["Id"] == second_id
    assert first_id not in docker.containers_by_id


def test_crashing_candidate_restores_the_previous_deployment(docker, params):
    deployed(docker, params(), "app:1")
    good = docker.by_name(NAME)["Id"]
    docker.add_image("app:bad", behaviour="crash")
    with pytest.raises(HomelabDockerError) as err:
        run(docker, params(image="app:bad"))
    assert "restored" in err.value.msg and "healthy again" in err.value.msg
    assert err.value.details["rolled_back"] is True
    assert docker.by_name(NAME)["Id"] == good and status(docker, NAME) == "running"
    assert docker.by_name(NAME)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert docker.container_names() == [NAME]
    assert journal_of(docker, params()).read() is None


def test_port_taken_by_another_container_changes_nothing(docker, params):
    docker.add_image("app:1")
    docker.add_image("other:1")
    other = docker.create_container("other:1", name="squatter",
                                    host_config=docker.create_host_config(port_bindings={"8000/tcp": ("0.0.0.0", 8000)}))
    docker.start(other["Id"])
    with pytest.raises(HomelabDockerError) as err:
        run(docker, params())
    assert "8000" in err.value.msg and "squatter" in err.value.msg and "Nothing was changed" in err.value.msg
    assert docker.container_names() == ["squatter"]


# ---- what an interrupted run leaves ----------------------------------------------------------

def interrupted_mid_gate(docker, p, candidate_ref, candidate_behaviour):
    """The state a kill -9 during the health wait leaves: journal, parked -previous, candidate."""
    deployed(docker, p, "app:1")
    previous = docker.by_name(NAME)
    docker.add_image(candidate_ref, behaviour=candidate_behaviour)
    rollout = cr.Rollout(dict(p, image=candidate_ref), client_factory=factory(docker))
    rollout._compare(docker.inspect_container(previous["Id"]), docker.inspect_image(candidate_ref)["Id"])
    rollout._park(docker.inspect_container(previous["Id"]), rollout.previous_name, "replacing", "new")
    cid = rollout._create(docker.inspect_image(candidate_ref)["Id"], rollout.salt)
    rollout.journal.update(candidate_id=cid)
    docker.start(cid)
    return previous["Id"], cid


def test_interrupted_rollout_with_healthy_candidate_keeps_it(docker, params):
    previous, candidate = interrupted_mid_gate(docker, params(), "app:2", "healthy")
    result = run(docker, params(image="app:2"))
    assert any("passed the health gate" in a for a in result["actions"])
    assert docker.by_name(NAME)["Id"] == candidate and status(docker, NAME) == "running"
    assert docker.by_name(NAME + "-rollback")["Id"] == previous
    assert journal_of(docker, params()).read() is None


def test_interrupted_rollout_with_unhealthy_candidate_restores_the_previous_one(docker, params):
    """The bug of the first wave: the parked container was removed and the unhealthy candidate
    accepted as unchanged. Now the candidate must pass the gate before anything older goes."""
    previous, candidate = interrupted_mid_gate(docker, params(), "app:2", "unhealthy")
    result = run(docker, params(image="app:1"))
    assert any("failed the health gate" in a for a in result["actions"])
    assert docker.by_name(NAME)["Id"] == previous and status(docker, NAME) == "running"
    assert candidate not in docker.containers_by_id
    assert docker.container_names() == [NAME]


def test_interrupted_rollout_rerun_with_the_bad_image_still_ends_serving_the_good_one(docker, params):
    previous, candidate = interrupted_mid_gate(docker, params(), "app:2", "unhealthy")
    with pytest.raises(HomelabDockerError):
        run(docker, params(image="app:2"))
    assert docker.by_name(NAME)["Id"] == previous and status(docker, NAME) == "running"


def test_interrupted_before_the_candidate_existed_brings_the_previous_one_back(docker, params):
    deployed(docker, params(), "app:1")
    previous = docker.by_name(NAME)
    rollout = cr.Rollout(params(), client_factory=factory(docker))
    rollout._park(docker.inspect_container(previous["Id"]), rollout.previous_name, "replacing", "new")
    assert status(docker, NAME + "-previous") == "exited"
    result = run(docker, params())
    assert any("before its new container existed" in a for a in result["actions"])
    assert docker.by_name(NAME)["Id"] == previous["Id"] and status(docker, NAME) == "running"
    assert not result["changed"] or result["actions"]


def test_leftover_previous_without_journal_is_treated_as_the_last_deployment(docker, params):
    """Leftovers of a release without the journal: the previous container is assumed to have run."""
    previous, candidate = interrupted_mid_gate(docker, params(), "app:2", "crash")
    journal_of(docker, params()).clear()
    run(docker, params(image="app:1"))
    assert docker.by_name(NAME)["Id"] == previous and status(docker, NAME) == "running"


def test_sigterm_during_the_health_wait_restores_at_once(docker, params):
    deployed(docker, params(), "app:1")
    good = docker.by_name(NAME)["Id"]
    docker.add_image("app:2", behaviour="slow:20")
    real_inspect = docker.inspect_container
    polls = {"n": 0}

    def inspect_then_signal(ref):
        info = real_inspect(ref)
        if ref != good and info["Name"] == "/" + NAME:
            polls["n"] += 1
            if polls["n"] == 3:
                os.kill(os.getpid(), signal.SIGTERM)
        return info
    docker.inspect_container = inspect_then_signal
    with pytest.raises(HomelabDockerError) as err:
        run(docker, params(image="app:2"))
    assert "interrupted" in err.value.msg
    assert docker.by_name(NAME)["Id"] == good and status(docker, NAME) == "running"
    assert docker.container_names() == [NAME]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# ---- unchanged but not healthy --------------------------------------------------------------

def test_unchanged_but_unhealthy_container_is_restarted_and_gated(docker, params):
    deployed(docker, params(), "app:1")
    docker.by_name(NAME)["_behaviour"] = "unhealthy"
    docker.clock.sleep(5)
    with pytest.raises(HomelabDockerError) as err:
        run(docker, params())
    assert "did not come up" in err.value.msg and "unhealthy" in err.value.msg
    assert ("stop", docker.by_name(NAME)["Id"]) in docker.calls


def test_unchanged_but_exited_container_is_started_again(docker, params):
    deployed(docker, params(), "app:1")
    docker.stop(docker.by_name(NAME)["Id"])
    result = run(docker, params())
    assert result["changed"] and status(docker, NAME) == "running"


# ---- rollback -------------------------------------------------------------------------------

def test_rollback_swaps_and_a_second_rollback_swaps_back(docker, params):
    deployed(docker, params(), "app:1")
    old = docker.by_name(NAME)["Id"]
    deployed(docker, params(), "app:2")
    new = docker.by_name(NAME)["Id"]
    result = run(docker, {"name": NAME, "state": "rolled_back", "state_dir": params()["state_dir"]})
    assert result["rolled_back"] and result["changed"]
    assert docker.by_name(NAME)["Id"] == old and status(docker, NAME) == "running"
    assert docker.by_name(NAME)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert docker.by_name(NAME + "-rollback")["Id"] == new and status(docker, NAME + "-rollback") == "exited"
    run(docker, {"name": NAME, "state": "rolled_back", "state_dir": params()["state_dir"]})
    assert docker.by_name(NAME)["Id"] == new


def test_rollback_without_a_kept_deployment_changes_nothing(docker, params):
    deployed(docker, params(), "app:1")
    calls = len(docker.calls)
    with pytest.raises(HomelabDockerError) as err:
        run(docker, {"name": NAME, "state": "rolled_back", "state_dir": params()["state_dir"]})
    assert "no earlier deployment" in err.value.msg and len(docker.calls) == calls


def test_rollback_to_a_container_that_fails_keeps_the_current_one_serving(docker, params):
    deployed(docker, params(), "app:1")
    deployed(docker, params(), "app:2")
    current = docker.by_name(NAME)["Id"]
    docker.by_name(NAME + "-rollback")["_behaviour"] = "crash"
    with pytest.raises(HomelabDockerError) as err:
        run(docker, {"name": NAME, "state": "rolled_back", "state_dir": params()["state_dir"]})
    assert "failed" in err.value.msg
    assert docker.by_name(NAME)["Id"] == current and status(docker, NAME) == "running"
    assert status(docker, NAME + "-rollback") == "exited"


def test_rollback_in_check_mode_touches_nothing(docker, params):
    deployed(docker, params(), "app:1")
    deployed(docker, params(), "app:2")
    calls = len(docker.calls)
    result = run(docker, {"name": NAME, "state": "rolled_back", "state_dir": params()["state_dir"]}, check=True)
    assert result["changed"] and len(docker.calls) == calls


# ---- the lock -------------------------------------------------------------------------------

def test_second_run_waits_for_the_lock_then_fails_saying_who_holds_it(docker, params):
    docker.add_image("app:1")
    rollout = cr.Rollout(params(), client_factory=factory(docker))
    with HostLock(rollout.state_dir, "rollout-" + rollout.key, "a test holding it", timeout=1):
        with pytest.raises(LockTimeout) as err:
            run(docker, params(lock_timeout=1))
    assert "a test holding it" in err.value.msg and "pid %d" % os.getpid() in err.value.msg
    assert docker.containers_by_id == {}
    assert run(docker, params())["changed"]


def test_waiting_for_the_lock_is_not_a_change(docker, params):
    import threading
    docker.add_image("app:1")
    run(docker, params())
    rollout = cr.Rollout(params(), client_factory=factory(docker))
    holder = HostLock(rollout.state_dir, "rollout-" + rollout.key, "the other terminal", timeout=1)
    holder.__enter__()
    threading.Timer(1.0, holder.__exit__).start()
    result = run(docker, params(lock_timeout=10))
    assert not result["changed"] and result["actions"] == []
    assert "the other terminal" in result["lock_wait"]


def test_check_mode_takes_no_lock_and_writes_nothing(docker, params, tmp_path):
    docker.add_image("app:1")
    run(docker, params(), check=True)
    assert not os.path.exists(params()["state_dir"]) and docker.containers_by_id == {}


# ---- validation before anything is touched --------------------------------------------------

@pytest.mark.parametrize("extra,expected", [
    ({"ports": ["localhost:8000:8000"]}, "is not an IP address"),
    ({"ports": ["8000:8000", "127.0.0.1:8000:9000"]}, "published twice"),
    ({"volumes": ["/nonexistent/homelab-test:/data"]}, "does not exist on the Docker host"),
    ({"volumes": ["a:/data", "b:/data"]}, "mounted twice"),
    ({"device_requests": [{"driver": "nvidia", "count": 1, "device_ids": ["0"], "capabilities": ["gpu"]}]},
     "both count and device_ids"),
    ({"device_requests": [{"driver": "nvidia", "device_ids": ["0"]}]}, "no capabilities"),
    ({"device_requests": [{"driver": "nvidia", "device_ids": ["first"], "capabilities": ["gpu"]}]}, "device id"),
    ({"device_requests": [{"driver": "nvidia", "count": 0, "capabilities": ["gpu"]}]}, "asks for no device"),
    ({"health_url": "localhost:8000/health"}, "not an http(s) URL"),
    ({"log_options": {"max-size": "10m"}}, "max-file"),
])
def test_bad_input_is_refused_before_the_daemon_is_asked(params, extra, expected):
    def no_client(*args):
        raise AssertionError("the daemon was contacted")
    with pytest.raises(HomelabDockerError) as err:
        cr.run_container_rollout(params(**extra), client_factory=no_client)
    assert expected in err.value.msg


def test_a_missing_bind_source_is_not_refused_in_check_mode(docker, params):
    """In check mode the task that creates the directory did not run either."""
    docker.add_image("app:1")
    result = run(docker, params(volumes=["/nonexistent/homelab-test:/data"]), check=True)
    assert result["changed"]


def test_create_bind_sources_makes_the_missing_directory_once(docker, params, tmp_path):
    """The dashboard's status directory: created by the rollout (mode 0755), a change once, then nothing."""
    source = tmp_path / "state" / "status"
    p = params(volumes=["%s:/srv/status:ro" % source], create_bind_sources=True)
    docker.add_image("app:1")
    first = run(docker, p)
    assert first["changed"] and "created the bind source directory %s" % source in first["actions"]
    assert source.is_dir() and (source.stat().st_mode & 0o777) == 0o755
    second = run(docker, p)
    assert not second["changed"] and second["actions"] == []


def test_create_bind_sources_creates_nothing_in_check_mode(docker, params, tmp_path):
    source = tmp_path / "status"
    docker.add_image("app:1")
    result = run(docker, params(volumes=["%s:/srv/status:ro" % source], create_bind_sources=True), check=True)
    assert result["changed"] and "would create the bind source directory %s" % source in result["actions"]
    assert not source.exists()


def test_create_bind_sources_leaves_an_existing_source_as_it_is(docker, params, tmp_path):
    source = tmp_path / "status"
    source.mkdir(mode=0o700)
    docker.add_image("app:1")
    run(docker, params(volumes=["%s:/srv/status:ro" % source], create_bind_sources=True))
    assert (source.stat().st_mode & 0o777) == 0o700


def test_create_bind_sources_is_refused_for_a_daemon_on_another_host(params, tmp_path):
    def no_client(*args):
        raise AssertionError("the daemon was contacted")
    p = params(volumes=["%s:/data" % (tmp_path / "data")], create_bind_sources=True, docker_host="tcp://10.0.0.5:2375")
    with pytest.raises(HomelabDockerError) as err:
        cr.run_container_rollout(p, client_factory=no_client)
    assert "the Docker daemon is at tcp://10.0.0.5:2375" in err.value.msg and not (tmp_path / "data").exists()


def test_journal_is_written_before_the_current_container_is_touched(docker, params):
    deployed(docker, params(), "app:1")
    seen = []
    real_rename = docker.rename

    def rename_and_look(container, name):
        seen.append(json.loads(open(journal_of(docker, params()).path).read()) if name.endswith("-previous") else None)
        return real_rename(container, name)
    docker.rename = rename_and_look
    deployed(docker, params(), "app:2")
    entry = [e for e in seen if e][0]
    assert entry["phase"] == "replacing" and entry["previous_was_running"] is True


# ---- init containers ----------------------------------------------------------------------------

OWNER = {"name": "volume-owner", "user": "0:0", "entrypoint": ["sh", "-c"], "command": ["chown -R 1000 /models"],
         "cap_add": ["CHOWN"]}


def init_runs(client):
    return [c for c in client.calls if c[0] == "create_container" and c[1] == NAME + "-init-volume-owner"]


def test_init_containers_run_before_a_new_container_and_not_on_a_no_op(docker, params):
    docker.add_image("app:1")
    p = params(volumes=["models:/models"], init_containers=[OWNER])
    first = run(docker, p)
    assert first["changed"] and len(init_runs(docker)) == 1
    assert first["init_containers"][0]["name"] == NAME + "-init-volume-owner"
    assert first["init_containers"][0]["exit_code"] == 0 and "ran: chown -R 1000 /models" in first["init_containers"][0]["output"]
    assert any(a.startswith("ran init container svc-init-volume-owner") for a in first["actions"])
    # It ran before the service's container was created, and is gone.
    creates = [c[1] for c in docker.calls if c[0] == "create_container"]
    assert creates == [NAME + "-init-volume-owner", NAME] and docker.container_names() == [NAME]
    second = run(docker, p)
    assert not second["changed"] and "init_containers" not in second and len(init_runs(docker)) == 1


def test_an_init_container_gets_the_volumes_no_network_and_only_its_capabilities(docker, params):
    docker.add_image("app:1")
    seen = {}
    real_create = docker.create_container

    def create(image, name=None, **kwargs):
        if name and "-init-" in name:
            seen.update(kwargs, name=name)
        return real_create(image, name=name, **kwargs)
    docker.create_container = create
    run(docker, params(volumes=["models:/models"], init_containers=[OWNER]))
    host = seen["host_config"]
    assert host["Binds"] == ["models:/models:rw"] and host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"] and host["CapAdd"] == ["CHOWN"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert seen["user"] == "0:0" and seen["entrypoint"] == ["sh", "-c"] and "PortBindings" not in host


def test_a_failing_init_container_leaves_the_running_deployment_serving(docker, params):
    p = params(volumes=["models:/models"])
    deployed(docker, p, "app:1")
    serving = docker.by_name(NAME)["Id"]
    docker.add_image("app:2")
    bad = dict(OWNER, command=["fail: no space left on device"])
    with pytest.raises(HomelabDockerError) as err:
        run(docker, dict(p, image="app:2", init_containers=[bad]))
    assert "Init container svc-init-volume-owner of svc failed (exit code 1)" in err.value.msg
    assert "keeps serving" in err.value.msg and "ran: fail: no space left on device" in err.value.msg
    assert docker.by_name(NAME)["Id"] == serving and status(docker, NAME) == "running"
    assert docker.container_names() == [NAME] and journal_of(docker, p).read() is None


def test_changing_an_init_container_replaces_the_deployment(docker, params):
    docker.add_image("app:1")
    p = params(volumes=["models:/models"], init_containers=[OWNER])
    run(docker, p)
    changed = run(docker, dict(p, init_containers=[dict(OWNER, command=["chown -R 1001 /models"])]))
    assert changed["changed"] and "init_containers" in changed["changed_keys"] and len(init_runs(docker)) == 2


def test_a_deployment_without_init_containers_keeps_its_hash(docker, params):
    # Added in a later release: a service that uses none is not replaced by the upgrade.
    assert cr.desired_config(params()) == cr.desired_config(params(init_containers=[]))
    assert "init_containers" not in cr.desired_config(params())


def test_init_containers_run_before_an_exited_unchanged_container_starts_again(docker, params):
    p = params(volumes=["models:/models"], init_containers=[OWNER])
    deployed(docker, p, "app:1")
    docker.stop(docker.by_name(NAME)["Id"])
    result = run(docker, p)
    assert result["changed"] and status(docker, NAME) == "running" and len(init_runs(docker)) == 2


def test_check_mode_says_which_init_containers_would_run_and_runs_none(docker, params):
    docker.add_image("app:1")
    result = run(docker, params(volumes=["models:/models"], init_containers=[OWNER]), check=True)
    assert "would run init container svc-init-volume-owner" in result["actions"] and not init_runs(docker)


@pytest.mark.parametrize("entries, expected", [
    ([{"name": "a b", "command": ["x"]}], "init_containers[0]: name 'a b' is not a short name"),
    ([{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}], "init_containers[1]: name 'a' is given twice"),
    ([{"name": "a", "command": []}], "init_containers[0] (a) has no command"),
])
def test_bad_init_containers_are_refused_by_entry(params, entries, expected):
    def no_client(*args):
        raise AssertionError("the daemon was contacted")
    with pytest.raises(HomelabDockerError) as err:
        cr.run_container_rollout(params(init_containers=entries), client_factory=no_client)
    assert expected in err.value.msg


def test_an_init_container_may_mount_writable_what_the_service_mounts_read_only(docker, params):
    docker.add_image("app:1")
    seen = {}
    real_create = docker.create_container

    def create(image, name=None, **kwargs):
        seen[name] = kwargs["host_config"].get("Binds")
        return real_create(image, name=name, **kwargs)
    docker.create_container = create
    gen = {"name": "tiny-pipeline", "command": ["python", "make.py"], "volumes": ["models:/models"]}
    run(docker, params(volumes=["models:/models:ro"], init_containers=[gen]))
    assert seen[NAME + "-init-tiny-pipeline"] == ["models:/models:rw"] and seen[NAME] == ["models:/models:ro"]
