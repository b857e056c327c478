# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The smoke_test role's verdict and report (pure logic, no I/O).

* ``benchmark_runs``: the role measures with ``homelab.ai.llm_benchmark`` in one looped task (items
  labelled ``direct`` and ``via_dashboard``); this splits the registered loop result back into one
  result and one error per label, as if each call had been a task of its own.
* ``smoke_report``: the report the role writes to ``status/smoke.json`` (the dashboard status page
  shows it) and whose ``passed`` fails the play: decode speed, TTFT and stream smoothness at vLLM and
  through the dashboard, the gate, what the planner expected, the status page and the image server.
* ``smoke_summary``: the one-screen summary (a list of lines) the role prints from that report.

The role calls them through the ``homelab.ai.smoke_report`` and ``homelab.ai.smoke_summary`` filters
(roles/smoke_test/tasks/main.yml).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime

from ansible.module_utils.parsing.convert_bool import boolean

# Bookkeeping a registered task result carries that is no measurement: left out of the report's copy
# of the direct run (``direct``), with the loop's own keys (the item and the name of its variable).
# Left out of the report's copy of the direct run: the requests, the task's bookkeeping, and the plan
# (status/plan.json has it; the report keeps its expected and ceiling rates).
RESULT_BOOKKEEPING = ("requests", "invocation", "changed", "failed", "plan")
LOOP_BOOKKEEPING = ("ansible_loop_var", "ansible_index_var", "ansible_loop")
# ansible_failed_result (what a rescue sees) also keeps the executor's own keys, which register drops.
INTERNAL_PREFIX = "_ansible_"

# The first bytes of a PNG (89 50 4E 47 0D 0A 1A 0A) in base64, as slurp returns the file.
PNG_BASE64_PREFIX = "iVBORw0KGgo"

_MISSING = object()


def _get(value, *keys):
    """value[k1][k2]..., or None where a level is missing or not a dict (Jinja's ``a.b | default(none)``)."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _gate(result, key):
    """result.gate[key], [] when the result has no gate or the gate no such key (``(r.gate | default({})).key | default([])``)."""
    gate = result.get("gate")
    if not isinstance(gate, dict):
        return []
    return gate.get(key, [])


def _as_bool(value):
    """Ansible's ``| bool``: true for True, 1, 'yes', 'on', 'true', '1'; false otherwise (never raises)."""
    return boolean(value, strict=False)


def benchmark_runs(loop_result, labels=("direct", "via_dashboard")):
    """Split the looped llm_benchmark task's registered result into ``{label: (result, error)}``.

    ``result`` is the item's result without the loop's bookkeeping (``{}`` when the item was skipped or
    never ran), ``error`` the item's ``msg`` when it failed, else None. When the task failed before any
    item ran (no ``results``), every label gets the task's message. The item's ``label`` names the run.
    """
    loop_result = loop_result if isinstance(loop_result, dict) else {}
    by_label = {}
    for item_result in loop_result.get("results") or []:
        if not isinstance(item_result, dict):
            continue
        loop_var = item_result.get("ansible_loop_var", "item")
        label = _get(item_result, loop_var, "label")
        if label is None:
            continue
        drop = set(LOOP_BOOKKEEPING) | set([loop_var])
        by_label[label] = dict((k, v) for k, v in item_result.items()
                               if k not in drop and not k.startswith(INTERNAL_PREFIX))

    runs = {}
    for label in labels:
        result = by_label.get(label)
        if result is None:
            error = None
            if loop_result.get("failed") and not loop_result.get("results"):
                error = loop_result.get("msg", "llm_benchmark failed")
            runs[label] = ({}, error)
        elif result.get("skipped"):
            runs[label] = ({}, None)
        elif result.get("failed"):
            runs[label] = (result, result.get("msg", "llm_benchmark failed"))
        else:
            runs[label] = (result, None)
    return runs


def _side_checks(via, via_error, check_dashboard, dashboard_gate, status_page, check_image_server, image_file,
                 check_mode):
    """(image_ok, status_ok, via_ok): each True or False where that check ran, None where it did not
    (turned off, or check mode). The run through the dashboard fails on its gate only with dashboard_gate."""
    if check_mode:
        return None, None, None
    image_ok = None
    if _as_bool(check_image_server):
        image_ok = (_get(image_file, "content") or "")[:11] == PNG_BASE64_PREFIX
    status_ok = via_ok = None
    if _as_bool(check_dashboard):
        status_ok = (status_page or {}).get("status", 0) == 200
        via_ok = via_error is None and (via.get("passed", False) or not dashboard_gate)
    return image_ok, status_ok, via_ok


def smoke_report(benchmarks, model=None, plan=None, min_tokens_per_second=None, tolerance=None,
                 check_dashboard=True, dashboard_gate=True, status_page=None,
                 check_image_server=True, image=None, image_file=None, check_mode=False, now=None):
    """The report (status/smoke.json) from the checks' registered results.

    benchmarks: the looped llm_benchmark task's registered result (see ``benchmark_runs``).
    model, plan: what llm_benchmark measured with (its ``model`` and ``plan`` results, direct run first)
    when not given. min_tokens_per_second, tolerance, check_dashboard, dashboard_gate, check_image_server:
    the role's settled variables. status_page: the dashboard status page's uri result. image,
    image_file: the generate request's uri result and the slurp of the PNG it wrote.
    check_mode: ``ansible_check_mode`` (nothing is judged then). now: the timestamp when the direct
    run has none (default: UTC now, ISO 8601 without offset, as Jinja's ``now(utc=true).isoformat()``).

    ``passed`` is false when the direct run was not measured, failed or missed its gate, or when a check
    that ran failed: the run through the dashboard (its gate only when ``dashboard_gate``), the status
    page, the image server. A check that did not run (turned off, or check mode) is None in the report.
    """
    runs = benchmark_runs(benchmarks)
    direct, direct_error = runs["direct"]
    via, via_error = runs["via_dashboard"]
    if model is None:
        model = direct.get("model") or via.get("model") or ""
    if plan is None:
        plan = direct.get("plan") or via.get("plan")
    plan = plan if isinstance(plan, dict) else {}
    measured = direct.get("measured", False)
    image_ok, status_ok, via_ok = _side_checks(via, via_error, check_dashboard, dashboard_gate, status_page,
                                               check_image_server, image_file, check_mode)
    passed = (_as_bool(measured) and direct_error is None and direct.get("passed", False)
              and via_ok is not False and image_ok is not False and status_ok is not False)

    image_error = None
    if image_ok is False:
        image = image or {}
        image_error = "%s (HTTP %s)" % (image.get("msg", "no PNG came back"), image.get("status", "?"))

    if "timestamp" in direct:
        timestamp = direct["timestamp"]
    else:
        timestamp = now if now is not None else \
            datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat()

    ceiling = plan.get("ceiling_tokens_per_second", _MISSING)
    if ceiling is _MISSING:
        ceiling = plan.get("predicted_tokens_per_second")

    return {
        "timestamp": timestamp,
        "model": model,
        "measured": measured,
        "passed": passed,
        "llm_passed": direct.get("passed", False),
        "decode_tokens_per_second": direct.get("decode_tokens_per_second"),
        "decode_tokens_per_second_median": direct.get("decode_tokens_per_second_median"),
        "ttft_ms": _get(direct, "ttft_ms", "median"),
        "tpot_ms": _get(direct, "tpot_ms", "median"),
        "output_throughput": direct.get("output_throughput"),
        "stream_quality": direct.get("stream_quality"),
        "threshold": direct.get("threshold"),
        "min_tokens_per_second": min_tokens_per_second,
        "tolerance": tolerance,
        "preemptions": direct.get("preemptions"),
        "failures": _gate(direct, "failures"),
        "warnings": _gate(direct, "warnings"),
        "explanations": _gate(direct, "explanations"),
        "error": direct_error,
        # The gate is compared with what the plan expects; the ceiling is the bandwidth bound no run reaches.
        "planned_expected_tokens_per_second": plan.get("expected_tokens_per_second"),
        "planned_ceiling_tokens_per_second": ceiling,
        "via_dashboard": {
            "checked": _as_bool(check_dashboard),
            "passed": via_ok,
            "decode_tokens_per_second": via.get("decode_tokens_per_second"),
            "ttft_ms": _get(via, "ttft_ms", "median"),
            "stream_quality": via.get("stream_quality"),
            "failures": _gate(via, "failures"),
            "error": via_error,
            "status_page_ok": status_ok,
        },
        "image_ok": image_ok,
        "image_error": image_error,
        "direct": dict((k, v) for k, v in direct.items() if k not in RESULT_BOOKKEEPING),
    }


# What one smoke run leaves in the bounded history the status page plots (status/smoke-history.json):
# the figures that change from run to run, not the whole report.
HISTORY_FIELDS = ("timestamp", "model", "passed", "decode_tokens_per_second", "decode_tokens_per_second_median",
                  "ttft_ms", "tpot_ms", "output_throughput", "planned_expected_tokens_per_second", "stream_quality",
                  "image_ok")


def history_entry(report):
    """One record of the smoke history from a smoke_report: its figures, and the dashboard run's decode speed."""
    entry = dict((name, report.get(name)) for name in HISTORY_FIELDS)
    via = report.get("via_dashboard") or {}
    entry["via_dashboard_decode_tokens_per_second"] = via.get("decode_tokens_per_second")
    return entry


def problems(report):
    """Every reason the smoke test failed, in the order the summary lists them."""
    via = report.get("via_dashboard") or {}
    return (([report["error"]] if report.get("error") else []) + list(report.get("failures") or [])
            + list(via.get("failures") or []) + ([via["error"]] if via.get("error") else [])
            + ([report["image_error"]] if report.get("image_error") else []))


def _listed(items):
    """A list of reasons as one line: 'none' when empty."""
    return "; ".join(str(i) for i in items) if items else "none"


def _decode_line(r):
    """Decode speed, gate, TTFT and stream quality: a figure the run does not have is named, never blank."""
    if r.get("decode_tokens_per_second") is None:
        parts = ["decode not measured"]
    else:
        parts = ["decode %s tok/s (1/mean TPOT; 1/median TPOT %s)"
                 % (r["decode_tokens_per_second"], r.get("decode_tokens_per_second_median"))]
    threshold, min_tps, tolerance = r.get("threshold"), r.get("min_tokens_per_second"), r.get("tolerance")
    if threshold is None and min_tps is not None and tolerance is not None:
        threshold = round(min_tps * (1.0 - tolerance), 3)  # the gate a run that measured nothing never reached
    parts.append("no speed gate (min_tokens_per_second unset)" if threshold is None else "gate %s tok/s" % threshold)
    if r.get("ttft_ms") is not None:
        parts.append("TTFT median %s ms" % r["ttft_ms"])
    if r.get("stream_quality"):
        parts.append("stream %s" % r["stream_quality"])
    return ", ".join(parts)


def _plan_line(r):
    expected, ceiling = r.get("planned_expected_tokens_per_second"), r.get("planned_ceiling_tokens_per_second")
    if expected is None and ceiling is None:
        plan = "no planner figures (no plan, or one without expected_tokens_per_second)"
    else:
        plan = "planner %s (%s)" % ("expected no figure" if expected is None else "expected %s tok/s" % expected,
                                    "no ceiling" if ceiling is None else "ceiling %s" % ceiling)
    preemptions = r.get("preemptions")
    return "%s; preemptions during the run: %s" % (plan, "not read" if preemptions is None else preemptions)


def _dashboard_line(via):
    if not via.get("checked"):
        return "via dashboard: not checked"
    rate = via.get("decode_tokens_per_second")
    return "via dashboard: %s, stream %s, passed %s, status page ok %s" % (
        "not measured" if rate is None else "%s tok/s" % rate, via.get("stream_quality") or "none",
        via.get("passed"), via.get("status_page_ok"))


def smoke_summary(report, vllm_url, report_path, check_mode=False):
    """The summary lines the role prints: verdict, decode speed and gate, plan, dashboard, image, problems.

    A figure the report does not have is named ("decode not measured", "no speed gate"), never left blank.
    """
    verdict = "PASSED" if report["passed"] else ("CHECKED (check mode, no load)" if check_mode else "FAILED")
    image_ok = report.get("image_ok")
    return [
        "smoke test %s: %s at %s" % (verdict, report["model"], vllm_url),
        _decode_line(report),
        _plan_line(report),
        _dashboard_line(report["via_dashboard"]),
        "image server: not checked" if image_ok is None else "image server PNG: %s" % (image_ok,),
        "problems: %s" % _listed(problems(report)),
        "likely causes: %s" % _listed(report["explanations"]),
        "warnings: %s" % _listed(report["warnings"]),
        "report: %s" % (report_path,),
    ]
