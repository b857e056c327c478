"""Debian's chromium, headless, driven by selenium through Debian's chromedriver (scripts/setup.sh installs
both; nothing is downloaded). Used by the status page's browser tests: the static one (tests/dashboard)
and the live one (molecule/local_stack)."""
import shutil

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait


def headless_chromium(profile_dir, width=1300, height=1800):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_exe = shutil.which("chromedriver")
    assert exe and driver_exe, "scripts/setup.sh installs Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = exe
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=%d,%d" % (width, height), "--user-data-dir=%s" % profile_dir):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver_exe), options=options)


def chart_data(driver, canvas_id):
    """What Chart.js draws on a canvas: [{label, values}] per dataset, or None when no chart is there."""
    return driver.execute_script("""
        const chart = Chart.getChart(document.getElementById(arguments[0]));
        if (!chart) return null;
        return chart.data.datasets.map(d => ({label: d.label,
                                              values: d.data.map(p => (p !== null && typeof p === 'object') ? p.y : p)}));
    """, canvas_id)


def chart_labels(driver, canvas_id):
    return driver.execute_script("const c = Chart.getChart(document.getElementById(arguments[0])); "
                                 "return c ? c.data.labels : null;", canvas_id)


def wait_until(driver, what, js_condition, timeout):
    """Wait until the page's `js_condition` (an expression) is truthy; the message names `what`."""
    WebDriverWait(driver, timeout, poll_frequency=0.25).until(
        lambda d: d.execute_script("try { return !!(%s); } catch (e) { return false; }" % js_condition),
        message="%s: not within %s s" % (what, timeout))
