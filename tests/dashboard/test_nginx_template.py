"""The dashboard's nginx template: the record's fix (variable upstreams resolved per request)
and unbuffered streaming, checked on the file; nginx itself accepts it in the image build's
check command and molecule/rollout_faults exercises it over HTTP."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "roles/dashboard/files/nginx.conf.template").read_text()
ENTRYPOINT = (ROOT / "roles/dashboard/files/entrypoint.sh").read_text()


def _location(path):
    match = re.search(r"location %s \{(.*?)\n        \}" % re.escape(path), TEMPLATE, re.S)
    assert match, path
    return match.group(1)


def test_no_hardcoded_upstream_host():
    # The old image had `proxy_pass http://llm-router...` baked in; only variables now.
    for line in TEMPLATE.splitlines():
        if "proxy_pass" in line:
            assert re.match(r"\s*proxy_pass \$\w+;$", line), line
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
    assert names == listed == {"DASHBOARD_PORT", "VLLM_UPSTREAM", "IMAGE_SERVER_UPSTREAM", "DASHBOARD_RESOLVER"}


def test_runs_as_non_root_with_writable_paths_in_tmp():
    for directive in ("pid", "client_body_temp_path", "proxy_temp_path"):
        match = re.search(r"^\s*%s (\S+);" % directive, TEMPLATE, re.M)
        assert match and match.group(1).startswith("/tmp/"), directive
    dockerfile = (ROOT / "roles/dashboard/files/Dockerfile").read_text()
    assert re.search(r"^USER \$\{APP_UID\}$", dockerfile, re.M)
    assert "listen ${DASHBOARD_PORT};" in TEMPLATE
