# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The smoke_test role's report and summary (module_utils/smoke_report.py).

The inputs are shaped like what the role registers: the looped llm_benchmark task's result (one item
per run, labelled direct and via_dashboard, with the loop's bookkeeping), the uri results of the
dashboard status page and the image request, and the slurp of the image.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import smoke_report as sr

PLAN = {"served_model_name": "qwen3-32b-awq", "expected_tokens_per_second": 19.0, "ceiling_tokens_per_second": 31.2}
PNG = {"content": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ", "encoding": "base64", "source": "/x/smoke.png"}
IMAGE_200 = {"status": 200, "msg": "OK (12345 bytes)"}
STATUS_200 = {"status": 200, "msg": "OK (unknown bytes)"}
SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
SLOW_GATE = {"failures": ["decode 9.5 tok/s is below the gate 17.1 tok/s (19 - 10%)"], "warnings": [],
             "explanations": ["the plan offloads 4 GiB to CPU (cpu_offload_gb)"]}


def run(label, **overrides):
    """One llm_benchmark call's result as the loop registers it."""
    result = {
        "changed": False, "failed": False, "label": label, "measured": True, "passed": True,
        "invocation": {"module_args": {"api_key": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", "label": label}},
        "timestamp": "2026-12-03T10:00:00+00:00", "decode_tokens_per_second": 21.37,
        "decode_tokens_per_second_median": 21.9, "ttft_ms": {"median": 88.5, "p99": 120.0},
        "tpot_ms": {"median": 45.6}, "output_throughput": 20.9, "stream_quality": "smooth", "threshold": 17.1,
        "preemptions": 0, "requests": [{"ttft_ms": 88.5}],
        "gate": {"failures": [], "warnings": ["one warm-up request only"], "explanations": []},
    }
    result.update(overrides)
    result.update({"item": {"label": label, "url": "http://127.0.0.1:8000", "at_vllm": label == "direct"},
                   "ansible_loop_var": "item"})
    return result


def failed_run(label, msg):
    """A call that failed (fail_json), as ansible_failed_result shows it in the rescue."""
    return {"failed": True, "changed": False, "msg": msg, "url": "http://127.0.0.1:8000", "model": "m",
            "exception": "(traceback unavailable)", "invocation": {"module_args": {}},
            "item": {"label": label}, "ansible_loop_var": "item",
            "_ansible_no_log": False, "_ansible_item_result": True, "_ansible_item_label": label}


def loop(*results):
    failed = any(r.get("failed") for r in results)
    return {"results": list(results), "changed": False, "skipped": False, "failed": failed,
            "msg": "One or more items failed" if failed else "All items completed"}


def report(benchmarks=None, **kwargs):
    args = dict(model="qwen3-32b-awq", plan=PLAN, min_tokens_per_second=19, tolerance=0.1,
                check_dashboard=True, dashboard_gate=True, status_page=STATUS_200,
                check_image_server=True, image=IMAGE_200, image_file=PNG, check_mode=False)
    args.update(kwargs)
    if benchmarks is None:
        benchmarks = loop(run("direct"), run("via_dashboard"))
    return sr.smoke_report(benchmarks, **args)


def test_all_passed():
    r = report()
    assert r["passed"] is True and r["llm_passed"] is True and r["measured"] is True
    assert r["timestamp"] == "2026-12-03T10:00:00+00:00"
    assert (r["decode_tokens_per_second"], r["ttft_ms"], r["tpot_ms"], r["stream_quality"]) == (21.37, 88.5, 45.6, "smooth")
    assert (r["threshold"], r["min_tokens_per_second"], r["tolerance"]) == (17.1, 19, 0.1)
    assert r["error"] is None and r["failures"] == [] and r["warnings"] == ["one warm-up request only"]
    assert (r["planned_expected_tokens_per_second"], r["planned_ceiling_tokens_per_second"]) == (19.0, 31.2)
    assert r["via_dashboard"] == {"checked": True, "passed": True, "decode_tokens_per_second": 21.37, "ttft_ms": 88.5,
                                  "stream_quality": "smooth", "failures": [], "error": None, "status_page_ok": True}
    assert r["image_ok"] is True and r["image_error"] is None
    # The direct run's whole result, less its per-request rows and the task's and loop's bookkeeping.
    assert "decode_tokens_per_second" in r["direct"] and r["direct"]["label"] == "direct"
    assert not set(r["direct"]) & {"requests", "invocation", "changed", "failed", "item", "ansible_loop_var"}
    assert sr.smoke_summary(r, "http://127.0.0.1:8000", "/var/lib/homelab/status/smoke.json") == [
        "smoke test PASSED: qwen3-32b-awq at http://127.0.0.1:8000",
        "decode 21.37 tok/s (1/mean TPOT; 1/median TPOT 21.9), gate 17.1 tok/s, TTFT median 88.5 ms, stream smooth",
        "planner expected 19.0 tok/s (ceiling 31.2); preemptions during the run: 0",
        "via dashboard: 21.37 tok/s, stream smooth, passed True, status page ok True",
        "image server PNG: True",
        "problems: none",
        "likely causes: none",
        "warnings: one warm-up request only",
        "report: /var/lib/homelab/status/smoke.json",
    ]


def test_a_vllm_gate_failure_fails_and_is_explained():
    r = report(loop(run("direct", passed=False, decode_tokens_per_second=9.5, gate=SLOW_GATE), run("via_dashboard")))
    assert r["passed"] is False and r["llm_passed"] is False and r["error"] is None
    assert r["failures"] == SLOW_GATE["failures"] and r["explanations"] == SLOW_GATE["explanations"]
    lines = sr.smoke_summary(r, "http://v:8000", "/s.json")
    assert lines[0] == "smoke test FAILED: qwen3-32b-awq at http://v:8000"
    assert lines[5] == "problems: %s" % "; ".join(SLOW_GATE["failures"])
    assert lines[6] == "likely causes: %s" % "; ".join(SLOW_GATE["explanations"])


def test_vllm_unreachable_is_the_error_and_nothing_was_measured():
    msg = "cannot reach http://127.0.0.1:8000/health: [Errno 111] Connection refused"
    r = report(loop(failed_run("direct", msg), run("via_dashboard")), now="2026-12-03T11:00:00")
    assert r["passed"] is False and r["measured"] is False and r["llm_passed"] is False
    assert r["error"] == msg and r["timestamp"] == "2026-12-03T11:00:00"
    assert r["decode_tokens_per_second"] is None and r["ttft_ms"] is None and r["failures"] == []
    # What fail_json returned, without the executor's keys that a rescue's ansible_failed_result keeps.
    assert r["direct"] == {"msg": msg, "url": "http://127.0.0.1:8000", "model": "m", "exception": "(traceback unavailable)"}
    lines = sr.smoke_summary(r, "http://127.0.0.1:8000", "/s.json")
    # A missing figure is named, not printed as a blank ("gate  tok/s" in the CI log of stop 17).
    assert lines[1] == "decode not measured, gate 17.1 tok/s"
    assert lines[5] == "problems: %s" % msg


@pytest.mark.parametrize("gate, passed", [(True, False), (False, True)])
def test_a_slow_dashboard_fails_only_with_the_dashboard_gate_on(gate, passed):
    slow = run("via_dashboard", passed=False, decode_tokens_per_second=3.2, stream_quality="buffered", gate=SLOW_GATE)
    r = report(loop(run("direct"), slow), dashboard_gate=gate)
    assert r["llm_passed"] is True
    assert r["passed"] is passed and r["via_dashboard"]["passed"] is passed
    assert r["via_dashboard"]["stream_quality"] == "buffered"
    assert r["via_dashboard"]["failures"] == SLOW_GATE["failures"]  # reported either way
    assert sr.problems(r) == SLOW_GATE["failures"]


def test_a_dashboard_error_fails_even_with_its_gate_off():
    r = report(loop(run("direct"), failed_run("via_dashboard", "GET http://d:8080/v1/models answered 502")),
               dashboard_gate=False)
    assert r["passed"] is False and r["via_dashboard"]["passed"] is False
    assert r["via_dashboard"]["error"] == "GET http://d:8080/v1/models answered 502"
    assert r["error"] is None and r["llm_passed"] is True


def test_a_dashboard_not_checked_is_none_and_does_not_count():
    skipped = dict(SKIPPED, item={"label": "via_dashboard"}, ansible_loop_var="item")
    r = report(loop(run("direct"), skipped), check_dashboard=False, status_page=SKIPPED)
    assert r["passed"] is True
    assert r["via_dashboard"] == {"checked": False, "passed": None, "decode_tokens_per_second": None, "ttft_ms": None,
                                  "stream_quality": None, "failures": [], "error": None, "status_page_ok": None}
    assert sr.smoke_summary(r, "u", "p")[3] == "via dashboard: not checked"


def test_a_status_page_that_does_not_answer_200_fails():
    r = report(status_page={"status": 502, "msg": "Status code was 502 and not [200]"})
    assert r["passed"] is False and r["via_dashboard"]["status_page_ok"] is False


@pytest.mark.parametrize("image, image_file, error", [
    ({"status": 401, "msg": "Status code was 401 and not [200]: HTTP Error 401: Unauthorized"}, SKIPPED,
     "Status code was 401 and not [200]: HTTP Error 401: Unauthorized (HTTP 401)"),
    (IMAGE_200, {"content": "PGh0bWw+", "encoding": "base64"}, "OK (12345 bytes) (HTTP 200)"),
    ({}, {}, "no PNG came back (HTTP ?)"),
])
def test_an_image_server_failure_fails_and_says_what_came_back(image, image_file, error):
    r = report(image=image, image_file=image_file)
    assert r["passed"] is False and r["llm_passed"] is True
    assert r["image_ok"] is False and r["image_error"] == error
    lines = sr.smoke_summary(r, "u", "p")
    assert lines[4] == "image server PNG: False" and lines[5] == "problems: %s" % error


def test_an_image_server_not_checked_is_none():
    r = report(check_image_server=False, image=SKIPPED, image_file=SKIPPED)
    assert r["passed"] is True and r["image_ok"] is None and r["image_error"] is None


@pytest.mark.parametrize("plan, expected, ceiling", [
    ({}, None, None),
    (None, None, None),
    ({"served_model_name": "m"}, None, None),
    ({"predicted_tokens_per_second": 28.0}, None, 28.0),  # an older plan: the prediction is the ceiling
    ({"expected_tokens_per_second": 19.0, "ceiling_tokens_per_second": None, "predicted_tokens_per_second": 28.0},
     19.0, None),  # a ceiling the plan set to null stays null
])
def test_missing_planner_figures_are_none_and_do_not_fail(plan, expected, ceiling):
    r = report(plan=plan)
    assert r["passed"] is True
    assert (r["planned_expected_tokens_per_second"], r["planned_ceiling_tokens_per_second"]) == (expected, ceiling)
    if plan in ({}, None):
        assert sr.smoke_summary(r, "u", "p")[2] == (
            "no planner figures (no plan, or one without expected_tokens_per_second); preemptions during the run: 0")
    elif expected is None and ceiling is not None:
        assert sr.smoke_summary(r, "u", "p")[2] == (
            "planner expected no figure (%s); preemptions during the run: 0"
            % ("no ceiling" if ceiling is None else "ceiling %s" % ceiling))


def test_check_mode_judges_nothing_and_reads_checked():
    direct = run("direct", measured=False, passed=None)
    del direct["timestamp"]
    r = report(loop(direct, run("via_dashboard", measured=False, passed=None)), check_mode=True,
               status_page=SKIPPED, image=SKIPPED, image_file=SKIPPED, now="2026-12-03T12:00:00")
    assert r["passed"] is False and r["timestamp"] == "2026-12-03T12:00:00"
    assert r["image_ok"] is None and r["via_dashboard"]["passed"] is None and r["via_dashboard"]["status_page_ok"] is None
    assert sr.smoke_summary(r, "u", "p", check_mode=True)[0] == "smoke test CHECKED (check mode, no load): qwen3-32b-awq at u"


def test_a_loop_that_failed_before_any_item_is_every_runs_error():
    r = report({"failed": True, "msg": "an undefined variable"})
    assert r["passed"] is False and r["error"] == "an undefined variable"
    assert r["via_dashboard"]["error"] == "an undefined variable" and r["direct"] == {}


def test_the_inputs_are_not_changed():
    benchmarks = loop(failed_run("direct", "x"), run("via_dashboard"))
    before = copy.deepcopy(benchmarks)
    report(benchmarks)
    assert benchmarks == before


def test_the_default_timestamp_is_utc_iso_without_offset():
    direct = run("direct")
    del direct["timestamp"]
    stamp = report(loop(direct, run("via_dashboard")))["timestamp"]
    assert "T" in stamp and "+" not in stamp and not stamp.endswith("Z")


def test_model_and_plan_default_to_what_llm_benchmark_measured_with():
    measured = loop(run("direct", model="qwen3-32b-awq", plan=PLAN), run("via_dashboard", model="qwen3-32b-awq", plan=PLAN))
    r = sr.smoke_report(measured, min_tokens_per_second=19, tolerance=0.1, status_page=STATUS_200,
                        image=IMAGE_200, image_file=PNG)
    assert r["passed"] is True and r["model"] == "qwen3-32b-awq"
    assert (r["planned_expected_tokens_per_second"], r["planned_ceiling_tokens_per_second"]) == (19.0, 31.2)
    # The report keeps the plan's rates, not a second copy of status/plan.json.
    assert "plan" not in r["direct"]


def test_a_benchmark_that_could_not_tell_the_model_is_a_failed_report_that_says_why():
    msg = ("llm_benchmark does not know which model the server must serve: /var/lib/homelab/status/plan.json does "
           "not exist. Set model, or let the planner write its plan (with served_model_name or model) first.")
    failing = dict(failed_run("direct", msg), model=None)
    r = sr.smoke_report(loop(failing, dict(failed_run("via_dashboard", msg), model=None)), status_page=STATUS_200,
                        image=IMAGE_200, image_file=PNG)
    assert r["passed"] is False and r["model"] == "" and r["error"] == msg
    assert r["planned_expected_tokens_per_second"] is None


def test_the_history_entry_keeps_the_figures_that_change_and_the_dashboard_speed():
    r = report()
    entry = sr.history_entry(r)
    assert entry == {"timestamp": "2026-12-03T10:00:00+00:00", "model": "qwen3-32b-awq", "passed": True,
                     "decode_tokens_per_second": 21.37, "decode_tokens_per_second_median": r["decode_tokens_per_second_median"],
                     "ttft_ms": 88.5, "tpot_ms": 45.6, "output_throughput": r["output_throughput"],
                     "planned_expected_tokens_per_second": 19.0, "stream_quality": "smooth", "image_ok": True,
                     "via_dashboard_decode_tokens_per_second": 21.37}


def test_the_history_entry_of_a_run_that_measured_nothing_has_empty_figures():
    failed = report(loop(dict(run("direct"), failed=True, msg="connection refused", measured=False,
                              decode_tokens_per_second=None)), check_dashboard=False)
    entry = sr.history_entry(failed)
    assert entry["passed"] is False and entry["via_dashboard_decode_tokens_per_second"] is None
