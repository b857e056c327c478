# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor report: one redacted document a person can paste into an issue.

Plain Python (the doctor_report module is a thin wrapper; unit tests import this directly). It reads
what the roles left in the state directory (plan and ledger, launch, smoke report and history,
unfinished rollout journals), asks the Docker daemon about the homelab's containers (state, health,
restart count, image and its version labels, the error lines of its recent log) and renders it all
as Markdown. Nothing here fails because a part is missing: a doctor is run when things are broken,
so each part says what it could not read instead.

Redaction is the last step and covers every string: the secrets the host holds (every file of
``<state_dir>/secrets``) and those the caller passes, anything shaped like a credential (a bearer
token, ``api_key=...``, ``--api-key ...``, a URL's password, Hugging Face and OpenAI style tokens),
and the host's addresses (those the caller passes, and every IPv4/IPv6 address that is not loopback
or unspecified, and MAC addresses).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import glob
import ipaddress
import json
import os
import re

from ansible_collections.homelab.ai.plugins.module_utils.container_rollout import IMAGE_REF_LABEL

SECRET_MARK = "<redacted:secret>"
ADDRESS_MARK = "<redacted:address>"
# Secret values shorter than this are not redacted by value (a 3-letter "key" would blank every word
# containing it); credential-shaped text is still caught by the patterns.
MIN_SECRET_LENGTH = 8

# A name that says "credential", then = or : (optionally quoted), then the value.
_CREDENTIAL_ASSIGNMENT = re.compile(
    r"(?i)\b([\w.-]*(?:api[_-]?key|token|passw(?:or)?d|secret|credential))(\"?'?\s*[:=]\s*\[?\s*\"?'?)([^\s\"',;&}\]]+)")
# --api-key VALUE / --token VALUE on a command line.
_CREDENTIAL_FLAG = re.compile(r"(?i)(--(?:api-key|token|password)[= ]+)([^\s\"',;]+)")
_NUMBER = re.compile(r"^-?[\d.]+(?:[eE][+-]?\d+)?$")
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]{6,})")
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)([^/\s@]+)(@)")
_TOKEN_SHAPES = re.compile(r"\b(?:hf_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,})\b")

# Not the start of a longer dotted number, nor a kernel release (6.6.87.2-microsoft-standard-WSL2).
_IPV4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w.]*\d)(?!-[A-Za-z])")
# IPv6 candidates: hex groups and colons with either "::" or seven colons; ipaddress decides.
_IPV6 = re.compile(r"(?<![\w:])((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?)(?![\w:])")
_MAC = re.compile(r"(?<![\w:])((?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2})(?![\w:])")

# A log line worth showing: what the services print when something went wrong.
# Words, and Python's exception names (AttributeError, torch.OutOfMemoryError, CancelledError).
_ERROR_LINE = re.compile(
    r"(?i:\b(?:error|errors|exception|traceback|critical|fatal|failed|failure|killed|oom|panic|emerg|alert|crit)\b)"
    r"|[a-z](?:Error|Exception)\b")
MAX_LINE_CHARS = 400


def _keep_address(address):
    """Loopback and unspecified addresses say how a port is bound; they identify nobody."""
    return address.is_loopback or address.is_unspecified


class Redactor(object):
    """Replaces secrets and addresses in every string of a structure, counting what it replaced."""

    def __init__(self, secrets=(), addresses=()):
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self.addresses = sorted({a for a in addresses if a and not self._is_kept_literal(a)}, key=len, reverse=True)
        self.counts = {"secrets": 0, "addresses": 0}

    @staticmethod
    def _is_kept_literal(text):
        try:
            return _keep_address(ipaddress.ip_address(text.split("%")[0]))
        except ValueError:
            return text in ("localhost",)

    def _sub(self, pattern, repl, text, kind):
        new, n = pattern.subn(repl, text)
        self.counts[kind] += n
        return new

    def _address(self, match):
        candidate = match.group(1)
        try:
            address = ipaddress.ip_address(candidate.split("%")[0])
        except ValueError:
            return candidate
        if _keep_address(address):
            return candidate
        self.counts["addresses"] += 1
        return ADDRESS_MARK

    def text(self, text):
        for secret in self.secrets:
            self.counts["secrets"] += text.count(secret)
            text = text.replace(secret, SECRET_MARK)
        text = self._sub(_BEARER, r"\1" + SECRET_MARK, text, "secrets")
        text = self._sub(_CREDENTIAL_FLAG, r"\1" + SECRET_MARK, text, "secrets")
        text = self._sub(_URL_PASSWORD, r"\1" + SECRET_MARK + r"\3", text, "secrets")
        text = self._sub(_TOKEN_SHAPES, SECRET_MARK, text, "secrets")
        text = _CREDENTIAL_ASSIGNMENT.sub(self._assignment, text)
        for address in self.addresses:
            self.counts["addresses"] += text.count(address)
            text = text.replace(address, ADDRESS_MARK)
        text = self._sub(_MAC, ADDRESS_MARK, text, "addresses")
        text = _IPV4.sub(self._address, text)
        return _IPV6.sub(self._address, text)

    def _assignment(self, match):
        value = match.group(3)
        # A figure (kv_bytes_per_token: 1024), a null or a flag is no credential.
        if value.startswith("<redacted") or value.lower() in ("null", "none", "true", "false") or _NUMBER.match(value):
            return match.group(0)
        self.counts["secrets"] += 1
        return match.group(1) + match.group(2) + SECRET_MARK

    def walk(self, obj):
        if isinstance(obj, dict):
            return dict((self.text(k) if isinstance(k, str) else k, self.walk(v)) for k, v in obj.items())
        if isinstance(obj, (list, tuple)):
            return [self.walk(v) for v in obj]
        if isinstance(obj, str):
            return self.text(obj)
        return obj


def host_secrets(state_dir):
    """Every secret file's content under <state_dir>/secrets, and what could not be read."""
    values, problems = [], []
    for path in sorted(glob.glob(os.path.join(state_dir, "secrets", "*"))):
        if not os.path.isfile(path):
            continue
        try:
            with open(path) as handle:
                # ansible's password lookup stores "value salt=..." when it was given an encryption.
                values.append(handle.read().strip().split(" salt=")[0])
        except (IOError, OSError) as exc:
            problems.append("%s: %s" % (path, exc.strerror or exc))
    return values, problems


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError) as exc:
        return {"unreadable": "%s: %s" % (path, exc.strerror or exc)}
    except ValueError as exc:
        return {"unreadable": "%s is not JSON: %s" % (path, exc)}


def read_state(state_dir, history_entries):
    """What the roles recorded: plan (with its ledger), launch, last smoke report, history, rollouts."""
    def optional(relative):
        path = os.path.join(state_dir, relative)
        return _read_json(path) if os.path.exists(path) else None

    history = optional("status/smoke-history.json")
    if isinstance(history, list):
        history = history[-history_entries:] if history_entries > 0 else []
    unfinished = []
    for path in sorted(glob.glob(os.path.join(state_dir, "rollouts", "*.rollout.json"))):
        journal = _read_json(path)
        journal["journal"] = os.path.basename(path)
        unfinished.append(journal)
    return {
        "state_dir": state_dir,
        "plan": optional("status/plan.json"),
        "launch": optional("vllm/launch.json"),
        "smoke": optional("status/smoke.json"),
        "smoke_history": history,
        "unfinished_rollouts": unfinished,
    }


def error_lines(log_text, limit):
    """The last ``limit`` lines of a log that read as an error, each cut to MAX_LINE_CHARS."""
    picked = [line[:MAX_LINE_CHARS] for line in log_text.splitlines() if _ERROR_LINE.search(line)]
    return picked[-limit:] if limit > 0 else []


# Labels that say what runs (versions, pins, model); not the rollout's bookkeeping (its config, hashes, salts).
_REPORTED_LABELS = ("org.homelab.", "org.opencontainers.image.version", IMAGE_REF_LABEL, "homelab.ai.model",
                    "homelab.ai.role")


def _version_labels(labels):
    return dict((k, v) for k, v in sorted((labels or {}).items()) if k.startswith(_REPORTED_LABELS))


def _container_entry(client, summary, inspected, log_lines, errors_per_service):
    name = summary["Names"][0].lstrip("/")
    state = inspected.get("State") or {}
    image_id = inspected.get("Image") or ""
    try:
        image = client.inspect_image(image_id)
        image_labels = (image.get("Config") or {}).get("Labels")
    # A removed image is worth reporting, not failing on.
    except Exception as exc:  # pylint: disable=broad-except
        image_labels = {"unreadable": str(exc)}
    log_text = client.logs(summary["Id"], stdout=True, stderr=True, timestamps=True, tail=log_lines)
    log_text = log_text.decode("utf-8", "replace") if isinstance(log_text, bytes) else log_text
    running = state.get("Running", False)
    entry = {
        "name": name,
        # A rollout runs its image by ID; the reference it was asked for is in its label.
        "image": ((inspected.get("Config") or {}).get("Labels") or {}).get(IMAGE_REF_LABEL)
        or (inspected.get("Config") or {}).get("Image"),
        "image_id": image_id.split(":")[-1][:12],
        "status": state.get("Status"),
        "health": (state.get("Health") or {}).get("Status"),
        "restart_count": inspected.get("RestartCount", 0),
        "started_at": state.get("StartedAt"),
        "finished_at": None if running else state.get("FinishedAt"),
        "exit_code": None if running else state.get("ExitCode"),
        "oom_killed": state.get("OOMKilled", False),
        "error": state.get("Error") or None,
        "ports": sorted("%s:%s->%s" % (b.get("HostIp"), b.get("HostPort"), port)
                        for port, binds in ((inspected.get("NetworkSettings") or {}).get("Ports") or {}).items()
                        for b in (binds or [])),
        "labels": _version_labels((inspected.get("Config") or {}).get("Labels")),
        "image_labels": _version_labels(image_labels) if "unreadable" not in (image_labels or {}) else image_labels,
        "log_errors": error_lines(log_text, errors_per_service),
    }
    if not running:
        # A stopped container's last words matter even when they do not say "error".
        entry["log_tail"] = [line[:MAX_LINE_CHARS] for line in log_text.splitlines()[-errors_per_service:]]
    return entry


_SECRET_ENV_NAME = re.compile(r"(?i)(key|token|passw(or)?d|secret|credential)")


def container_env_secrets(inspected):
    """Values of a container's environment whose name says credential (VLLM_API_KEY, HF_TOKEN...).

    The report never lists a container's environment; these values are only redacted wherever else
    they appear (a log line, an argument), so a key the caller did not pass is still caught.
    """
    values = []
    for item in (inspected.get("Config") or {}).get("Env") or []:
        name, value = item.partition("=")[::2]
        if _SECRET_ENV_NAME.search(name) and value:
            values.append(value)
    return values


def read_containers(client, prefix, log_lines, errors_per_service):
    """Every container whose name starts with ``prefix``, running or not, in name order, and the
    credential values of their environments (for the redactor)."""
    summaries = client.containers(all=True, filters={"name": prefix})
    summaries = sorted((s for s in summaries if s["Names"] and s["Names"][0].lstrip("/").startswith(prefix)),
                       key=lambda s: s["Names"][0])
    entries, secrets = [], []
    for summary in summaries:
        inspected = client.inspect_container(summary["Id"])
        secrets.extend(container_env_secrets(inspected))
        entries.append(_container_entry(client, summary, inspected, log_lines, errors_per_service))
    return entries, secrets


def read_engine(client):
    version = client.version()
    return {"version": version.get("Version"), "api_version": version.get("ApiVersion"),
            "os": version.get("Os"), "kernel": version.get("KernelVersion")}


# ---------------------------------------------------------------------------------------------------
# What of the host's facts goes in: the picks a person debugging the stack needs, not all of setup's.

FACT_KEYS = ("distribution", "distribution_version", "distribution_release", "kernel", "architecture",
             "python_version", "service_mgr", "virtualization_type", "virtualization_role", "memtotal_mb",
             "memfree_mb", "swaptotal_mb", "processor_vcpus", "processor_nproc", "uptime_seconds",
             "wsl", "gpus", "gpu_summary", "container_runtime")


def pick_facts(facts):
    """The doctor's subset of ``ansible_facts`` (setup's plus homelab.ai's detections and local facts)."""
    picked = dict((k, facts[k]) for k in FACT_KEYS if k in facts)
    local = facts.get("local", facts.get("ansible_local"))
    if local:
        picked["local"] = local
    return picked


def host_addresses(facts):
    """Every address and DNS name of the host its facts know, for redaction wherever they appear."""
    found = list(facts.get("all_ipv4_addresses") or []) + list(facts.get("all_ipv6_addresses") or [])
    for key in ("default_ipv4", "default_ipv6"):
        default = facts.get(key) or {}
        found.extend(v for v in (default.get("address"), default.get("macaddress"), default.get("gateway")) if v)
    for interface in facts.get("interfaces") or []:
        mac = (facts.get(interface) or facts.get("ansible_" + interface) or {}).get("macaddress")
        if mac:
            found.append(mac)
    fqdn = facts.get("fqdn") or ""
    if "." in fqdn and fqdn != "localhost.localdomain":
        found.append(fqdn)
    return found


def host_versions(facts, versions):
    """The versions of what runs the stack, from the facts, then what the caller adds."""
    gpu = facts.get("gpu_summary") or {}
    wsl = facts.get("wsl") or {}
    runtime = facts.get("container_runtime") or {}
    found = {
        "python (target)": facts.get("python_version"),
        "distribution": " ".join(str(facts[k]) for k in ("distribution", "distribution_version") if facts.get(k)) or None,
        "kernel": facts.get("kernel"),
        "nvidia driver": gpu.get("driver_version"),
        "cuda (driver)": gpu.get("cuda_version"),
        "wsl": wsl.get("version") if wsl.get("is_wsl") else None,
        "windows build": wsl.get("windows_build"),
        "docker cli": runtime.get("client_version"),
    }
    found.update(versions)
    return dict((k, v) for k, v in found.items() if v not in (None, ""))


# ---------------------------------------------------------------------------------------------------
# The report and its Markdown


def build_report(state_dir, client_factory, facts, versions, secrets, addresses, generated_at,
                 prefix="homelab-", log_lines=400, errors_per_service=20, history_entries=5):
    """Gather every part (none of which may fail the report), then redact all of it.

    ``client_factory()`` returns a Docker API client or raises; an unreachable daemon is itself a
    finding. Returns (report, markdown), both redacted.
    """
    report = {"generated_at": generated_at, "facts": pick_facts(facts), "versions": host_versions(facts, versions),
              "state": read_state(state_dir, history_entries), "engine": None, "containers": [],
              "problems": []}
    env_secrets = []
    try:
        client = client_factory()
        report["engine"] = read_engine(client)
        report["versions"]["docker engine"] = "%s (API %s)" % (report["engine"]["version"], report["engine"]["api_version"])
        report["containers"], env_secrets = read_containers(client, prefix, log_lines, errors_per_service)
    # The daemon being down is what a doctor reports, not a reason to fail.
    except Exception as exc:  # pylint: disable=broad-except
        report["problems"].append("Docker: %s" % (getattr(exc, "msg", None) or exc))
    planned = (report["state"]["plan"] or {}).get("vllm_version")
    if planned:
        report["versions"].setdefault("vllm (planned)", planned)
    held, unreadable = host_secrets(state_dir)
    report["problems"].extend("secret file not read (its value is redacted only if passed as secrets): %s" % p
                              for p in unreadable)
    redactor = Redactor(list(secrets) + held + env_secrets, list(addresses) + host_addresses(facts))
    report = redactor.walk(report)
    markdown = redactor.text(render_markdown(report))
    report["redactions"] = dict(redactor.counts)
    report["summary"] = summary_lines(report)
    return report, markdown


def _table(header, rows):
    def cell(value):
        text = "" if value is None else str(value)
        return text.replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return lines


def _json_block(title, obj):
    return ["<details><summary>%s</summary>" % title, "", "```json",
            json.dumps(obj, indent=2, sort_keys=True, default=str), "```", "", "</details>", ""]


def summary_lines(report):
    containers = report["containers"]
    down = [c["name"] for c in containers if c["status"] != "running"]
    unhealthy = [c["name"] for c in containers if c["health"] not in (None, "healthy")]
    restarts = sum(c["restart_count"] or 0 for c in containers)
    smoke = report["state"]["smoke"] or {}
    lines = ["- containers: %d, not running: %s, not healthy: %s, restarts: %d"
             % (len(containers), ", ".join(down) or "none", ", ".join(unhealthy) or "none", restarts)]
    if smoke:
        lines.append("- last smoke test: %s at %s, decode %s tok/s (%s)"
                     % ("passed" if smoke.get("passed") else "FAILED", smoke.get("timestamp"),
                        smoke.get("decode_tokens_per_second"), smoke.get("model")))
    else:
        lines.append("- last smoke test: none recorded")
    lines.append("- unfinished rollouts: %d" % len(report["state"]["unfinished_rollouts"]))
    lines.extend("- problem: %s" % p for p in report["problems"])
    return lines


def _plan_lines(plan):
    if not plan:
        return ["No plan recorded (status/plan.json): vLLM has not been planned on this host yet.", ""]
    expected = plan.get("expected_tokens_per_second")
    lines = ["- model %s on %s, vLLM %s, quantization %s, max_model_len %s, %s"
             % (plan.get("model"), plan.get("device"), plan.get("vllm_version"), plan.get("quantization"),
                plan.get("max_model_len"),
                "expected %s tok/s" % expected if expected is not None else "no speed expectation")]
    lines.extend("- warning: %s" % w for w in plan.get("warnings") or [])
    lines.append("")
    for gpu, ledger in sorted((plan.get("ledger") or {}).items()):
        lines.append("GPU %s ledger (%s GiB):" % (gpu, ledger.get("total_gib")))
        lines.append("")
        rows = [(e.get("name"), e.get("gib"), e.get("what")) for e in ledger.get("entries") or []]
        lines.extend(_table(["entry", "GiB", "what"], rows + [("headroom", ledger.get("headroom_gib"), "")]))
        lines.append("")
    return lines + _json_block("plan.json", plan)


def _container_lines(containers):
    if not containers:
        return ["No homelab container found.", ""]
    rows = [(c["name"], c["status"], c["health"] or "-", c["restart_count"], c["image"], c["image_id"],
             c["started_at"], ", ".join(c["ports"]) or "-") for c in containers]
    lines = _table(["container", "state", "health", "restarts", "image", "id", "started", "ports"], rows) + [""]
    for c in containers:
        if c.get("exit_code") is not None or c.get("oom_killed") or c.get("error"):
            lines.append("- %s: exit code %s, OOM killed %s, error %s, finished %s"
                         % (c["name"], c.get("exit_code"), c.get("oom_killed"), c.get("error"), c.get("finished_at")))
    return lines + [""]


def _log_lines(containers):
    lines = []
    for c in containers:
        shown = c["log_errors"] or c.get("log_tail") or []
        what = "error lines of the recent log" if c["log_errors"] else (
            "last lines of the log (stopped)" if c.get("log_tail") else "no error in the recent log")
        lines.append("### %s: %s" % (c["name"], what))
        lines.append("")
        if shown:
            lines.extend(["```"] + shown + ["```"])
            lines.append("")
    return lines or ["No container logs.", ""]


def _smoke_lines(state):
    history = state["smoke_history"]
    lines = []
    if isinstance(history, list) and history:
        keys = ["timestamp", "model", "passed", "decode_tokens_per_second", "ttft_ms", "tpot_ms",
                "via_dashboard_decode_tokens_per_second", "image_ok"]
        lines.extend(_table(keys, [[h.get(k) for k in keys] for h in history]) + [""])
    if state["smoke"]:
        lines.extend(_json_block("smoke.json (the last report)", state["smoke"]))
    return lines or ["No smoke test recorded.", ""]


def render_markdown(report):
    """One document to paste into an issue: summary first, details folded."""
    facts = report["facts"]
    lines = ["# homelab.ai doctor report", "",
             "Generated %s. Secrets and the host's addresses are redacted (%s, %s)."
             % (report["generated_at"], SECRET_MARK, ADDRESS_MARK), "",
             "## Summary", ""] + summary_lines(report) + [""]
    lines += ["## Versions", ""] + _table(["what", "version"], sorted(report["versions"].items())) + [""]
    for c in report["containers"]:
        labels = dict(c["image_labels"] or {}, **c["labels"])
        if labels:
            lines.append("- %s: %s" % (c["name"], ", ".join("%s=%s" % kv for kv in sorted(labels.items()))))
    lines += ["", "## Containers", ""] + _container_lines(report["containers"])
    lines += ["## Recent errors by service", ""] + _log_lines(report["containers"])
    lines += ["## Plan and GPU ledger", ""] + _plan_lines(report["state"]["plan"])
    lines += ["## Smoke tests", ""] + _smoke_lines(report["state"])
    if report["state"]["unfinished_rollouts"]:
        lines += ["## Unfinished rollouts", ""] + _json_block("rollout journals", report["state"]["unfinished_rollouts"])
    lines += ["## Facts", ""] + _json_block("facts", facts)
    lines += _json_block("vLLM launch (launch.json)", report["state"]["launch"])
    return "\n".join(lines) + "\n"
