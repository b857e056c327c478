# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a container's ports, volumes and HTTP health check are written (pure, standard library only).

container_rollout builds containers from these; the ``http_healthcheck`` and ``secret_policy``
filters use them too. They live apart from container_rollout because a filter plugin is loaded in
every task's worker process that templates any homelab.ai filter: importing container_rollout there
pulled in the Docker SDK and requests (about 80 ms a task) for a few lines of parsing.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def parse_port(spec):
    """'127.0.0.1:8000:8000', '8080:80', '80', '53:53/udp', '[::1]:80:80' -> normalised dict."""
    text = str(spec).strip()
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        if proto not in ("tcp", "udp", "sctp"):
            raise ValueError("port %r: protocol must be tcp, udp or sctp" % (spec,))
    host_ip = ""
    if text.startswith("["):
        end = text.find("]")
        if end == -1 or text[end + 1:end + 2] != ":":
            raise ValueError("port %r: bad IPv6 address, use [addr]:host:container" % (spec,))
        host_ip = text[1:end]
        text = text[end + 2:]
        parts = text.split(":")
    else:
        parts = text.split(":")
        if len(parts) == 3:
            host_ip = parts.pop(0)
        elif len(parts) > 3:
            raise ValueError("port %r: expected [ip:]host_port:container_port[/proto]" % (spec,))
    if len(parts) == 1:
        host_port, container_port = "", parts[0]
    elif len(parts) == 2:
        host_port, container_port = parts
        if not host_port and not host_ip:
            raise ValueError("port %r: empty host port; write the container port alone for a random one" % (spec,))
    else:
        raise ValueError("port %r: expected [ip:]host_port:container_port[/proto]" % (spec,))
    for value, what in ((container_port, "container port"), (host_port, "host port")):
        if value == "" and what == "host port":
            continue
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise ValueError("port %r: %s %r is not a number in 1-65535" % (spec, what, value))
    return {"host_ip": host_ip, "host_port": int(host_port) if host_port else None,
            "container_port": int(container_port), "proto": proto}


def port_key(p):
    return "%s:%s:%s/%s" % (p["host_ip"], p["host_port"] or "", p["container_port"], p["proto"])


def parse_volume(spec):
    """'volname:/path[:ro]' or '/host/path:/path[:ro]' -> {'type', 'source', 'target', 'read_only'}."""
    parts = str(spec).split(":")
    if len(parts) == 2:
        source, target, mode = parts[0], parts[1], "rw"
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise ValueError("volume %r: expected source:/container/path[:ro|rw]" % (spec,))
    if mode not in ("ro", "rw"):
        raise ValueError("volume %r: mode must be ro or rw, got %r" % (spec, mode))
    if not target.startswith("/"):
        raise ValueError("volume %r: container path %r must be absolute" % (spec, target))
    if source.startswith("/"):
        kind = "bind"
    elif NAME_RE.match(source):
        kind = "volume"
    else:
        raise ValueError("volume %r: source must be an absolute host path or a volume name "
                         "(letters, digits, '_', '.', '-'); relative paths are ambiguous" % (spec,))
    return {"type": kind, "source": source, "target": target, "read_only": mode == "ro"}


def http_healthcheck_test(port, path):
    """A healthcheck test that passes when GET <path> on 127.0.0.1:<port> inside the container answers 200.

    bash's /dev/tcp, for images that have bash but neither curl nor wget (Debian's nginx, Prometheus and
    its exporter as the roles build them). HTTP/1.0, so the server closes and `head` returns.
    """
    port = int(port)
    if not 0 < port < 65536:
        raise ValueError("http_healthcheck_test: port %s is not 1-65535" % port)
    if not str(path).startswith("/") or any(c in str(path) for c in " '\r\n"):
        raise ValueError("http_healthcheck_test: path %r must start with '/' and hold no space, quote or newline" % (path,))
    return ["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/%d && printf 'GET %s HTTP/1.0\\r\\n\\r\\n' >&3 "
            "&& head -n1 <&3 | grep -q ' 200 '" % (port, path)]
