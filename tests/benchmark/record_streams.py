#!/usr/bin/env python3
"""Record real vLLM HTTP exchanges (SSE bytes with arrival offsets) as replay fixtures.

Used to make collections/.../tests/unit/plugins/module_utils/fixtures/streams/*.json. Each
fixture is a JSON object:

    {"source": "<how it was recorded>", "recorded": "<UTC time>", "auth_key": null,
     "exchanges": {"GET /health": {"status": 200, "headers": {...}, "body": "..."},
                   "POST /v1/chat/completions": {"status": 200, "headers": {...},
                        "request": {...payload...},
                        "reads": [[seconds_since_request_sent, "raw bytes of one read"], ...],
                        "complete": true}}}

Reads are what http.client's ``read1`` returned (chunked transfer decoding done), i.e. what
the module sees. ``complete`` is false when the connection broke mid-stream.

Usage: record_streams.py BASE_URL MODEL OUT.json --source "text" [--api-key K] [--max-tokens N]
       [--paths /health,/v1/models,/metrics] [--no-stream] [--no-auth-header]
       record_streams.py --derive-buffered SRC.json OUT.json PAGE_BYTES
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import sys
import time
from urllib.parse import urlsplit

PROMPT = ("Write a long, detailed story about a lighthouse keeper who discovers that the fog "
          "outside speaks. Describe every room of the lighthouse.")


def connect(url):
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=300)


def get(url, path, headers):
    conn = connect(url)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return {"status": resp.status, "headers": dict(resp.getheaders()),
                "body": resp.read().decode("utf-8", "replace")}
    finally:
        conn.close()


def stream(url, path, payload, headers):
    conn = connect(url)
    body = json.dumps(payload).encode()
    hdrs = dict(headers, **{"Content-Type": "application/json"})
    st = time.perf_counter()
    reads = []
    complete = True
    error = None
    try:
        conn.request("POST", path, body=body, headers=hdrs)
        resp = conn.getresponse()
        out = {"status": resp.status, "headers": dict(resp.getheaders()), "request": payload}
        if resp.status != 200:
            out["body"] = resp.read().decode("utf-8", "replace")
            return out
        while True:
            data = resp.read1(65536)
            if not data:
                break
            reads.append([round(time.perf_counter() - st, 6), data.decode("utf-8", "replace")])
    except (OSError, http.client.HTTPException) as exc:
        complete = False
        error = "%s: %s" % (type(exc).__name__, exc)
    finally:
        conn.close()
    out.update({"reads": reads, "complete": complete})
    if error:
        out["client_error"] = error
    return out


def derive_buffered(src, out, page):
    """Collapse a recorded stream's arrivals as a page-buffering proxy would deliver them.

    The SSE text is cut into `page`-byte pieces; each piece arrives when the recorded stream had
    produced its last byte (the final piece at the end). Everything else is kept as recorded.
    """
    with open(src) as fh:
        fixture = json.load(fh)
    for key, ex in fixture["exchanges"].items():
        if "reads" not in ex:
            continue
        text, ends = "", []
        for offset, piece in ex["reads"]:
            text += piece
            ends.append((len(text), offset))
        reads = []
        for start in range(0, len(text), page):
            stop = min(start + page, len(text))
            when = next(off for end, off in ends if end >= stop)
            reads.append([when, text[start:stop]])
        ex["reads"] = reads
    fixture["source"] = ("DERIVED, not recorded: %s with its arrivals collapsed into %d-byte pieces, as a "
                         "proxy that buffers the response in pages delivers it (nginx 1.22 with "
                         "proxy_buffering on did NOT buffer this stream, see nginx_proxy_buffering_on.json). "
                         "Made by tests/benchmark/record_streams.py --derive-buffered. Original: %s"
                         % (os.path.basename(src), page, fixture["source"]))
    with open(out, "w") as fh:
        json.dump(fixture, fh, indent=1)
        fh.write("\n")
    print("%s: %d reads" % (out, len(reads)))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--derive-buffered":
        derive_buffered(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--source", required=True)
    ap.add_argument("--api-key")
    ap.add_argument("--no-auth-header", action="store_true",
                    help="record what the server answers without the key (a 401)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--paths", default="/health,/v1/models,/metrics")
    ap.add_argument("--no-stream", action="store_true")
    ap.add_argument("--endpoint", default="chat", choices=["chat", "completions"])
    args = ap.parse_args()

    headers = {"Accept": "application/json, text/event-stream"}
    if args.api_key and not args.no_auth_header:
        headers["Authorization"] = "Bearer %s" % args.api_key
    fixture = {
        "source": args.source,
        "recorded": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "auth_key": args.api_key,
        "model": args.model,
        "exchanges": {},
    }
    for path in [p for p in args.paths.split(",") if p]:
        fixture["exchanges"]["GET " + path] = get(args.url, path, headers)
    if not args.no_stream:
        payload = {"model": args.model, "max_tokens": args.max_tokens, "stream": True,
                   "stream_options": {"include_usage": True}, "ignore_eos": True, "temperature": 0.0}
        if args.endpoint == "chat":
            payload["messages"] = [{"role": "user", "content": PROMPT}]
            path = "/v1/chat/completions"
        else:
            payload["prompt"] = PROMPT
            path = "/v1/completions"
        fixture["exchanges"]["POST " + path] = stream(args.url, path, payload, headers)
    if "GET /metrics" in fixture["exchanges"]:
        # keep only the vllm:* lines that matter; the full exposition is ~60 KB
        body = fixture["exchanges"]["GET /metrics"]["body"]
        keep = [ln for ln in body.splitlines()
                if "num_preemptions" in ln or "generation_tokens_total" in ln or "prompt_tokens_total" in ln]
        fixture["exchanges"]["GET /metrics"]["body"] = "\n".join(keep) + "\n"
    with open(args.out, "w") as fh:
        json.dump(fixture, fh, indent=1)
        fh.write("\n")
    ex = fixture["exchanges"].get("POST " + ("/v1/chat/completions" if args.endpoint == "chat" else "/v1/completions"))
    if ex and "reads" in ex:
        print("%s: %d reads, complete=%s, status=%s" % (args.out, len(ex["reads"]), ex["complete"], ex["status"]))
    else:
        print("%s: %s" % (args.out, {k: v["status"] for k, v in fixture["exchanges"].items()}))


if __name__ == "__main__":
    main()
