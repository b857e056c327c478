# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet: which inference host serves which model, and the router's configuration made from the
hosts' own plans (pure logic).

Every inference host is planned from its own facts by the vllm role (``homelab.ai.vllm_plan``, one vLLM
per host, tensor parallel within it). The router (LiteLLM's proxy, roles/router) is then configured from
those plans:

* ``fleet_backends``: one backend per host whose plan was made this run, the model it serves under
  (``--served-model-name``), its context and its address; a host whose plan was refused, or that never got
  a plan (it failed or was unreachable earlier), is left out with the reason - a warning, not a failed fleet.
* ``router_config``: LiteLLM's ``config.yaml`` as data. Replicas of one model share a ``model_name`` (LiteLLM
  balances them and retries a failed request on another one); a model no host serves is refused by LiteLLM
  itself ("Invalid model name passed in model=..."). Keys never appear in it: each upstream key is an
  ``os.environ/`` reference that the container gets through container_rollout's ``secret_env``.
* ``upstream_key_env``: those environment variables and their values (the role hands them to ``secret_env``).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

# Environment variable of the router's own key (LiteLLM's master key, read through os.environ/).
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
UPSTREAM_KEY_ENV_PREFIX = "HOMELAB_UPSTREAM_KEY_"
# LiteLLM's provider prefix for an OpenAI-compatible vLLM server (litellm/llms/hosted_vllm).
VLLM_PROVIDER = "hosted_vllm"


def served_model_name(plan):
    """The name vLLM answers to: the plan's ``--served-model-name`` argument, else its registry name."""
    args = list(plan.get("args") or [])
    for index, arg in enumerate(args[:-1]):
        if arg == "--served-model-name":
            return str(args[index + 1])
    return str(plan.get("model") or "")


def _first_line(text):
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else "no reason given"


def _left_out(host, why):
    return {"host": host, "reason": "%s: %s; left out of the routing" % (host, why)}


def backend_of(host):
    """One host's backend, or why it is left out.

    ``host``: ``name``, ``plan_result`` (the vllm role's registered ``vllm_plan_result``, or None when the
    host never got that far), ``url`` (where the router reaches its vLLM, ``http://address:port``) and
    ``api_key`` (its vLLM key, empty when it has none). Returns ``(backend, None)`` or ``(None, left_out)``.
    """
    name = host["name"]
    result = host.get("plan_result")
    if not isinstance(result, dict) or not result:
        return None, _left_out(name, "no vLLM plan this run (the host failed or was unreachable before the vllm "
                                     "role planned it; its play recap says why)")
    if result.get("failed"):
        return None, _left_out(name, "its vLLM plan was refused (%s)" % _first_line(result.get("msg")))
    if result.get("skipped"):
        return None, _left_out(name, "its vLLM plan was skipped")
    plan = result.get("plan")
    if not isinstance(plan, dict) or not plan.get("args"):
        return None, _left_out(name, "its vLLM plan result holds no plan")
    url = str(host.get("url") or "").rstrip("/")
    if not re.match(r"^https?://[^/\s]+$", url):
        return None, _left_out(name, "no address for its vLLM (got %r; set router_upstream_url in its host_vars, "
                                     "e.g. http://192.0.2.10:8000)" % url)
    return {
        "host": name,
        "model": served_model_name(plan),
        "max_model_len": plan.get("max_model_len"),
        "device": plan.get("device"),
        "tensor_parallel_size": plan.get("tensor_parallel_size") or 1,
        "api_base": url + "/v1",
        "has_key": bool(host.get("api_key")),
    }, None


def key_env_name(host):
    """The environment variable that carries ``host``'s vLLM key into the router."""
    return UPSTREAM_KEY_ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", host.upper())


def fleet_backends(hosts):
    """Every host's backend, and the hosts left out (each with its reason). Hosts are taken in name order."""
    backends, left_out, env_owner = [], [], {}
    for host in sorted(hosts, key=lambda item: item["name"]):
        backend, why = backend_of(host)
        if why:
            left_out.append(why)
            continue
        env = key_env_name(backend["host"])
        if env in env_owner:
            raise ValueError("hosts %r and %r map to the same key variable %s: rename one of them"
                             % (env_owner[env], backend["host"], env))
        env_owner[env] = backend["host"]
        backends.append(backend)
    return {"backends": backends, "left_out": left_out,
            "models": sorted(set(backend["model"] for backend in backends))}


def _deployment(backend, health_check_timeout):
    # max_retries 0: the client's own retries would try the same host again; the router's (num_retries) go to
    # another replica once this one rests.
    params = {"model": "%s/%s" % (VLLM_PROVIDER, backend["model"]), "api_base": backend["api_base"], "max_retries": 0}
    # LiteLLM sends some key to an OpenAI-compatible server; a keyless vLLM ignores it.
    params["api_key"] = ("os.environ/%s" % key_env_name(backend["host"])) if backend["has_key"] else "none"
    info = {"id": backend["host"], "homelab_host": backend["host"]}
    if backend.get("max_model_len"):
        info["max_input_tokens"] = int(backend["max_model_len"])
    if health_check_timeout:
        # A host that went silent (powered off, its container gone: no RST) would hold a check until the TCP connect
        # gives up; this bounds it, so the check marks the host down within interval + timeout.
        info["health_check_timeout"] = int(health_check_timeout)
    return {"model_name": backend["model"], "litellm_params": params, "model_info": info}


def router_config(backends, settings):
    """LiteLLM proxy's configuration for ``backends`` (from ``fleet_backends``).

    ``settings``: ``num_retries``, ``allowed_fails``, ``cooldown_seconds``, ``timeout_seconds``,
    ``health_check_interval`` (0 turns background health checks off), ``health_check_timeout`` and ``metrics``."""
    if not backends:
        raise ValueError("no inference host has a plan to route to")
    interval = int(settings.get("health_check_interval") or 0)
    general = {"master_key": "os.environ/%s" % MASTER_KEY_ENV}
    if interval > 0:
        # The background checks' verdicts steer the routing too: a host found down gets no requests until a later
        # check finds it up (proxy_server.py, enable_health_check_routing), so a request does not have to fail on it
        # first - which on a host that is off (no RST) would wait out the TCP connect timeout.
        general.update({"background_health_checks": True, "health_check_interval": interval,
                        "enable_health_check_routing": True})
    config = {
        "model_list": [_deployment(backend, int(settings.get("health_check_timeout", 5)) if interval > 0 else 0)
                       for backend in backends],
        "router_settings": {
            # Replicas of one model at random; a deployment that fails more than allowed_fails times in a minute
            # rests for cooldown_seconds and the retry picks among the others (LiteLLM's cooldown_handlers.py).
            "routing_strategy": "simple-shuffle",
            "num_retries": int(settings.get("num_retries", 2)),
            "allowed_fails": int(settings.get("allowed_fails", 0)),
            "cooldown_time": int(settings.get("cooldown_seconds", 10)),
            "timeout": int(settings.get("timeout_seconds", 600)),
        },
        "litellm_settings": {"drop_params": True},
        "general_settings": general,
    }
    if settings.get("metrics", True):
        config["litellm_settings"]["callbacks"] = ["prometheus"]
    return config


def upstream_key_env(hosts):
    """``{environment name: key}`` for every host that has a backend and a key (secret: for secret_env only)."""
    backends = {backend["host"] for backend in fleet_backends(hosts)["backends"] if backend["has_key"]}
    return {key_env_name(host["name"]): host["api_key"] for host in hosts if host["name"] in backends}
