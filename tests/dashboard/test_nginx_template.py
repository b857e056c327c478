"""The dashboard's nginx template: the record's fix (variable upstreams resolved per request)
and unbuffered streaming, checked on the file; nginx itself accepts it in the image build's
check command and molecule/rollout_faults exercises it over HTTP."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "roles/dashboard/files/nginx.conf.template").read_text()
ENTRYPOINT = (ROOT / "roles/dashboard/files/entrypoint.sh").read_text()
DEFAULTS = yaml.safe_load((ROOT / "roles/dashboard/defaults/main.yml").read_text())
TASKS = (ROOT / "roles/dashboard/tasks/main.yml").read_text()


def render(**values):
    """The template as the entrypoint's envsubst renders it (only the listed variables)."""
    listed = re.findall(r"\$\{(\w+)\}", ENTRYPOINT.split("envsubst", 1)[1].split("<", 1)[0])
    out = TEMPLATE
    for name in listed:
        out = out.replace("${%s}" % name, str(values[name]))
    return out


ROLE_VALUES = {"DASHBOARD_PORT": 8080, "VLLM_UPSTREAM": DEFAULTS["dashboard_vllm_upstream"],
               "IMAGE_SERVER_UPSTREAM": DEFAULTS["dashboard_image_server_upstream"],
               "PROMETHEUS_UPSTREAM": DEFAULTS["dashboard_prometheus_upstream"],
               "DASHBOARD_RESOLVER": DEFAULTS["dashboard_resolver"],
               "DASHBOARD_RATE_LIMIT": DEFAULTS["dashboard_rate_limit"],
               "DASHBOARD_RATE_BURST": DEFAULTS["dashboard_rate_burst"],
               "DASHBOARD_CONN_LIMIT": DEFAULTS["dashboard_conn_limit"]}


def _location(path):
    match = re.search(r"location %s \{(.*?)\n        \}" % re.escape(path), TEMPLATE, re.S)
    assert match, path
    return match.group(1)


def test_no_hardcoded_upstream_host():
    # The old image had `proxy_pass http://llm-router...` baked in; only variables now.
    for line in TEMPLATE.splitlines():
        if "proxy_pass" in line:
            # A variable, with at most a path of captures after it (Prometheus's two query routes).
            assert re.match(r"\s*proxy_pass \$\w+(/api/v1/\$1\$is_args\$args)?;$", line), line
    assert "llm-router" not in TEMPLATE
    assert not re.search(r"^\s*upstream\s+\S+\s*\{", TEMPLATE, re.M)  # resolved once at start


def test_resolver_and_upstream_variables():
    assert re.search(r"^\s*resolver \$\{DASHBOARD_RESOLVER\}", TEMPLATE, re.M)
    assert "set $vllm_upstream ${VLLM_UPSTREAM};" in _location("/v1/")
    assert "set $image_server_upstream ${IMAGE_SERVER_UPSTREAM};" in _location("/image/")


def test_a_dead_upstream_fails_fast():
    # Seen in CI: a stopped upstream's cached address made /v1/ hang for nginx's default 60 s.
    match = re.search(r"^\s*proxy_connect_timeout (\d+)s;", TEMPLATE, re.M)
    assert match and int(match.group(1)) <= 10


def test_stream_routes_are_unbuffered():
    for path in ("/v1/", "/image/"):
        block = _location(path)
        for directive in ("proxy_buffering off;", "proxy_cache off;", "proxy_http_version 1.1;",
                          "chunked_transfer_encoding on;", "add_header X-Accel-Buffering no;"):
            assert directive in block, (path, directive)


def test_envsubst_only_touches_our_variables():
    names = set(re.findall(r"\$\{(\w+)\}", TEMPLATE))
    listed = set(re.findall(r"\$\{(\w+)\}", ENTRYPOINT.split("envsubst", 1)[1].split("<", 1)[0]))
    assert names == listed == {"DASHBOARD_PORT", "VLLM_UPSTREAM", "IMAGE_SERVER_UPSTREAM", "PROMETHEUS_UPSTREAM",
                               "DASHBOARD_RESOLVER",
                               "DASHBOARD_RATE_LIMIT", "DASHBOARD_RATE_BURST", "DASHBOARD_CONN_LIMIT"}


def test_runs_as_non_root_with_writable_paths_in_tmp():
    for directive in ("pid", "client_body_temp_path", "proxy_temp_path"):
        match = re.search(r"^\s*%s (\S+);" % directive, TEMPLATE, re.M)
        assert match and match.group(1).startswith("/tmp/"), directive
    dockerfile = (ROOT / "roles/dashboard/files/Dockerfile").read_text()
    assert re.search(r"^USER \$\{APP_UID\}$", dockerfile, re.M)
    assert "listen ${DASHBOARD_PORT};" in TEMPLATE


def _rendered_location(config, path):
    match = re.search(r"location %s \{(.*?)\n        \}" % re.escape(path), config, re.S)
    assert match, path
    return match.group(1)


def test_limits_per_client_address_answer_429():
    config = render(**ROLE_VALUES)
    assert re.search(r"^\s*limit_req_zone \$binary_remote_addr zone=per_client_rate:1m rate=10r/s;$", config, re.M)
    assert re.search(r"^\s*limit_conn_zone \$binary_remote_addr zone=per_client_conn:1m;$", config, re.M)
    assert re.search(r"^\s*limit_req_status 429;$", config, re.M)
    assert re.search(r"^\s*limit_conn_status 429;$", config, re.M)
    for path in ("/", "/status/", "/v1/", "/image/", "~ ^/prometheus/api/v1/(query|query_range)$"):
        block = _rendered_location(config, path)
        assert "limit_req zone=per_client_rate burst=20 nodelay;" in block, path
        assert "limit_conn per_client_conn 32;" in block, path
    # The health gate and Docker's healthcheck are never throttled into a rollback.
    assert "limit_" not in _rendered_location(config, "= /healthz")
    # Nothing at server level that /healthz would inherit.
    server = config.split("server {", 1)[1].split("location", 1)[0]
    assert "limit_req" not in server and "limit_conn" not in server


def test_prometheus_is_reachable_read_only_and_only_for_queries():
    block = _location("~ ^/prometheus/api/v1/(query|query_range)$")
    assert "set $prometheus_upstream ${PROMETHEUS_UPSTREAM};" in block
    assert re.search(r"limit_except GET \{\s*deny all;\s*\}", block)
    # No other route reaches Prometheus (its admin API, config, targets).
    assert TEMPLATE.count("$prometheus_upstream") == 2


def test_nginx_counters_are_on_a_port_the_role_never_publishes():
    stub = TEMPLATE.split("listen 8081;", 1)[1].split("server {", 1)[0]
    assert "location = /stub_status {\n            stub_status;" in stub
    assert "8081" not in TASKS.split("ports:", 1)[1].split("volumes:", 1)[0]


def test_the_role_passes_every_template_variable_and_the_image_has_the_same_defaults():
    names = set(re.findall(r"\$\{(\w+)\}", TEMPLATE))
    env_block = TASKS.split("homelab.ai.container_rollout:", 1)[1].split("ports:", 1)[0]
    passed = set(re.findall(r"'(DASHBOARD_\w+|VLLM_UPSTREAM|IMAGE_SERVER_UPSTREAM|PROMETHEUS_UPSTREAM)':", env_block))
    assert passed == names
    dockerfile = (ROOT / "roles/dashboard/files/Dockerfile").read_text()
    image_env = dict(re.findall(r"(DASHBOARD_RATE_LIMIT|DASHBOARD_RATE_BURST|DASHBOARD_CONN_LIMIT)=(\S+)", dockerfile))
    assert image_env == {"DASHBOARD_RATE_LIMIT": DEFAULTS["dashboard_rate_limit"],
                         "DASHBOARD_RATE_BURST": str(DEFAULTS["dashboard_rate_burst"]),
                         "DASHBOARD_CONN_LIMIT": str(DEFAULTS["dashboard_conn_limit"])}


def test_the_build_check_renders_through_the_entrypoint():
    # One list of the template's variables: the entrypoint's; the image check runs it with --check.
    assert "check_command: [--check]" in TASKS
    assert 'if [ "$#" -gt 0 ]; then exec nginx -e stderr -t -c /tmp/nginx/nginx.conf; fi' in ENTRYPOINT
