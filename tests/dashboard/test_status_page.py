"""The status page in headless Chromium (tests/support/browser.py) against its files served as the
dashboard serves them, with a plan from the real planner (the gaming host's Qwen3-32B-AWQ on an
RTX 3090 in WSL2, the model entry read from the inventory) and a smoke history: the GPU ledger is
drawn as stacked bars that add up to each GPU's memory, the options the planner weighed are a table,
the smoke history is plotted, and a page without Prometheus says so instead of drawing nothing.
The live stack's plots and the try-it panel are molecule/local_stack's. Screenshots: out/dashboard/."""
import json
import shutil
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from ansible_collections.homelab.ai.plugins.module_utils import vllm_plan as vp
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.inventory_models import GAMING, inventory_model
from tests.support.browser import chart_data, chart_labels, headless_chromium, wait_until

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "out" / "dashboard"
CHARTJS = Path("/usr/share/javascript/chart.js")
RTX3090 = {"index": 0, "name": "NVIDIA GeForce RTX 3090", "memory_total_mib": 24576, "memory_free_mib": 24523,
           "compute_capability": "8.6", "memory_bandwidth_gbps": 936}
WSL2 = {"is_wsl": True, "version": 2, "kernel_release": "6.6.87.2-microsoft-standard-WSL2"}
HISTORY = [{"timestamp": "2026-12-0%dT10:00:00+00:00" % day, "model": "qwen3-32b-awq", "passed": True,
            "decode_tokens_per_second": tps, "via_dashboard_decode_tokens_per_second": round(tps - 0.3, 2),
            "planned_expected_tokens_per_second": 19.0} for day, tps in ((1, 18.7), (2, 19.4), (3, 19.1))]


def test_the_host_chart_js_is_the_version_the_image_installs():
    wanted = yaml.safe_load((ROOT / "roles/dashboard/defaults/main.yml").read_text())["dashboard_chartjs_version"]
    have = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libjs-chart.js"], capture_output=True, text=True).stdout
    assert have == wanted, "scripts/setup.sh installs libjs-chart.js %s for these tests; the image pins %s" % (have, wanted)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The dashboard's files at the paths nginx serves them, on a local HTTP server."""
    root = tmp_path_factory.mktemp("site")
    shutil.copy(ROOT / "roles/dashboard/files/html/index.html", root / "index.html")
    shutil.copytree(CHARTJS, root / "vendor" / "chart.js")
    (root / "status").mkdir()
    plan = vp.plan(inventory_model(GAMING, "qwen3-32b-awq"), [RTX3090], WSL2, "0.32.0", name="qwen3-32b-awq",
                   min_tokens_per_second=19, max_num_seqs=16)
    (root / "status" / "plan.json").write_text(json.dumps(plan))
    (root / "status" / "smoke-history.json").write_text(json.dumps(HISTORY))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/" % server.server_address[1], plan, root
    server.shutdown()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page(site, tmp_path_factory):
    url, plan, _root = site
    driver = headless_chromium(tmp_path_factory.mktemp("chromium"))
    try:
        driver.get(url)
        wait_until(driver, "the ledger chart", "Chart.getChart(document.getElementById('chart-ledger'))", 30)
        wait_until(driver, "the smoke history chart", "Chart.getChart(document.getElementById('chart-smoke'))", 30)
        wait_until(driver, "the metrics notes", "document.getElementById('chart-throughput-note').className === 'bad'", 30)
        OUT.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(OUT / "status-page-gaming-plan.png"))
        yield driver, plan
    finally:
        driver.quit()


def test_the_ledger_is_stacked_bars_that_add_up_to_each_gpu(page):
    driver, plan = page
    ledger = plan["ledger"]["0"]
    sets = {d["label"]: d["values"] for d in chart_data(driver, "chart-ledger")}
    assert set(sets) == {e["name"] for e in ledger["entries"]} | {"headroom"}
    assert {"weights", "kv_cache"} <= set(sets), sets
    assert sets["headroom"] == [ledger["headroom_gib"]]
    assert sum(v[0] for v in sets.values()) == pytest.approx(ledger["total_gib"], abs=0.01)
    assert chart_labels(driver, "chart-ledger") == ["GPU 0 (%g GiB)" % ledger["total_gib"]]


def test_the_options_the_planner_weighed_are_a_table(page):
    driver, plan = page
    rows = driver.execute_script("return [...document.querySelectorAll('#options tr')].map(r => r.innerText);")
    assert len(rows) == 1 + len(plan["options"]) and len(plan["options"]) >= 3
    chosen = [o for o in plan["options"] if o["chosen"]]
    assert len(chosen) == 1 and chosen[0]["title"] in rows[1 + plan["options"].index(chosen[0])]
    weights = driver.execute_script("return [...document.querySelectorAll('#options tr')].slice(1).map(r => r.style.fontWeight);")
    assert weights == ["bold" if o["chosen"] else "" for o in plan["options"]]


def test_the_smoke_history_is_plotted_at_vllm_through_the_dashboard_and_against_the_plan(page):
    driver, _plan = page
    sets = {d["label"]: d["values"] for d in chart_data(driver, "chart-smoke")}
    assert sets == {"at vLLM": [18.7, 19.4, 19.1], "through the dashboard": [18.4, 19.1, 18.8],
                    "planner expected": [19.0, 19.0, 19.0]}


def test_without_prometheus_the_metric_plots_say_why(page):
    driver, _plan = page
    note = driver.find_element("id", "chart-throughput-note").text
    assert "no metrics" in note and "monitoring off" in note
    assert driver.find_element("id", "svc-prometheus").text.startswith("Prometheus")


def test_a_hole_in_the_metrics_breaks_the_line_instead_of_sloping_across_it(site, tmp_path):
    """Prometheus answers query_range with samples every 15 s, then none for 20 minutes (the stack was
    down), then samples again: the plot gets one null point in the hole, so Chart.js draws two pieces.
    The stand-in answers every query_range alike (a file at that path; the page adds its query string)."""
    url, _plan, root = site
    api = root / "prometheus" / "api" / "v1"
    api.mkdir(parents=True)
    start = 1796500000
    values = [[start + 15 * i, "5"] for i in range(4)] + [[start + 1245 + 15 * i, "7"] for i in range(3)]
    (api / "query_range").write_text(json.dumps({"status": "success", "data": {"result": [{"metric": {}, "values": values}]}}))
    driver = headless_chromium(tmp_path / "chromium")
    try:
        driver.get(url)
        wait_until(driver, "the throughput plot", "Number(document.getElementById('chart-throughput').dataset.points) > 0", 30)
        assert chart_data(driver, "chart-throughput")[0]["values"] == [5, 5, 5, 5, None, 7, 7, 7]
        xs = driver.execute_script("return Chart.getChart(document.getElementById('chart-throughput')).data.datasets[0]"
                                   ".data.map(p => p.x);")
        assert xs[4] == (values[3][0] + values[4][0]) / 2
    finally:
        driver.quit()
        shutil.rmtree(root / "prometheus")
