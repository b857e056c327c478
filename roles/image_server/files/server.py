"""homelab image server: a small HTTP front for a diffusers text-to-image pipeline.

GET  /health    -> 200 {"status": "ok", ...} once the pipeline is loaded, 503 before.
POST /generate  -> image/png; JSON body {"prompt": str, "steps": int, "size": "64x64" | int,
                   "width": int, "height": int, "seed": int, "guidance_scale": float}.
Standard library HTTP server; one generation at a time (a lock), since a pipeline is not
thread-safe and the GPU (or the CPU here) is the bottleneck anyway.
"""
import argparse
import io
import json
import logging
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = logging.getLogger("image-server")
MAX_SIDE = int(os.environ.get("IMAGE_SERVER_MAX_SIDE", "1024"))
MAX_STEPS = int(os.environ.get("IMAGE_SERVER_MAX_STEPS", "100"))


class State:
    pipeline = None
    error = None
    model = None
    loaded_at = None
    lock = threading.Lock()
    served = 0


def load_pipeline(model_dir, pipeline_class):
    import torch
    import diffusers

    threads = int(os.environ.get("IMAGE_SERVER_TORCH_THREADS", "0"))
    if threads > 0:
        # On a small shared CPU, torch's default (one thread per core) spins against other
        # processes: measured 13 s vs 1.4 s for 64x64/2 steps with 1 thread on 2 busy cores.
        torch.set_num_threads(threads)
    cls = getattr(diffusers, pipeline_class)
    start = time.monotonic()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # fp16 on CUDA halves the pipeline's VRAM (what the vLLM plan's ledger counts for this co-tenant);
    # CPUs have no fast fp16 path, so float32 there. IMAGE_SERVER_DTYPE overrides.
    dtype_name = os.environ.get("IMAGE_SERVER_DTYPE", "auto")
    if dtype_name == "auto":
        dtype_name = "float16" if device == "cuda" else "float32"
    pipe = cls.from_pretrained(model_dir, local_files_only=True, torch_dtype=getattr(torch, dtype_name))
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    LOG.info("loaded %s from %s on %s (%s) in %.1fs", pipeline_class, model_dir, device, dtype_name,
             time.monotonic() - start)
    return pipe


def parse_request(body):
    try:
        req = json.loads(body or b"{}")
    except ValueError as exc:
        raise ValueError("body is not JSON: %s" % exc)
    if not isinstance(req, dict):
        raise ValueError("body must be a JSON object")
    prompt = req.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("'prompt' must be a non-empty string")
    steps = int(req.get("steps", 20))
    width = height = None
    size = req.get("size")
    if isinstance(size, str) and "x" in size:
        width, height = (int(v) for v in size.lower().split("x", 1))
    elif size is not None:
        width = height = int(size)
    width = int(req.get("width", width or 512))
    height = int(req.get("height", height or 512))
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError("'steps' must be 1..%d, got %d" % (MAX_STEPS, steps))
    for name, value in (("width", width), ("height", height)):
        if value % 8 or not 8 <= value <= MAX_SIDE:
            raise ValueError("'%s' must be a multiple of 8 in 8..%d, got %d" % (name, MAX_SIDE, value))
    return {
        "prompt": prompt,
        "steps": steps,
        "width": width,
        "height": height,
        "seed": req.get("seed"),
        "guidance_scale": float(req.get("guidance_scale", 7.5)),
    }


class Handler(BaseHTTPRequestHandler):
    server_version = "homelab-image-server/1"

    def log_message(self, fmt, *args):
        LOG.info("%s %s", self.address_string(), fmt % args)

    def _json(self, code, payload):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path in ("/health", "/"):
            if State.pipeline is None:
                return self._json(503, {"status": "loading" if State.error is None else "error",
                                        "error": State.error, "model": State.model})
            import diffusers
            import torch
            import transformers
            return self._json(200, {"status": "ok", "model": State.model, "served": State.served,
                                    "pipeline": type(State.pipeline).__name__,
                                    "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                                                 "transformers": transformers.__version__}})
        return self._json(404, {"error": "no route %s" % path})

    def do_POST(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if path != "/generate":
            return self._json(404, {"error": "no route %s" % path})
        if State.pipeline is None:
            return self._json(503, {"error": "pipeline not loaded", "detail": State.error})
        length = int(self.headers.get("Content-Length") or 0)
        try:
            req = parse_request(self.rfile.read(length))
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})
        import torch

        generator = None
        if req["seed"] is not None:
            generator = torch.Generator(device="cpu").manual_seed(int(req["seed"]))
        start = time.monotonic()
        with State.lock:
            result = State.pipeline(prompt=req["prompt"], num_inference_steps=req["steps"],
                                    width=req["width"], height=req["height"],
                                    guidance_scale=req["guidance_scale"], generator=generator)
            State.served += 1
        elapsed = time.monotonic() - start
        buf = io.BytesIO()
        result.images[0].save(buf, format="PNG")
        data = buf.getvalue()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Generation-Seconds", "%.3f" % elapsed)
        self.end_headers()
        self.wfile.write(data)


def healthcheck(port):
    """One line on failure (the Docker health log keeps it), no traceback."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print("health: HTTP %d %s" % (exc.code, exc.read(200).decode("utf-8", "replace")))
    except Exception as exc:  # connection refused while starting, timeouts
        print("health: %s" % exc)
    return 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("IMAGE_SERVER_MODEL", "/models/tiny-sd"))
    parser.add_argument("--pipeline", default=os.environ.get("IMAGE_SERVER_PIPELINE", "StableDiffusionPipeline"))
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("IMAGE_SERVER_PORT", "7860")))
    parser.add_argument("--healthcheck", action="store_true",
                        help="probe http://127.0.0.1:PORT/health once; exit 0 when it answers 200")
    args = parser.parse_args(argv)
    if args.healthcheck:
        return healthcheck(args.port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    State.model = args.model
    if not os.path.isfile(os.path.join(args.model, "model_index.json")):
        # Fail fast: a restart loop with this message beats a server that answers 503 forever.
        LOG.error("no diffusers model at %s (model_index.json missing)", args.model)
        return 2
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    LOG.info("listening on %s:%d", args.host, args.port)

    def _load():
        try:
            State.pipeline = load_pipeline(args.model, args.pipeline)
            State.loaded_at = time.time()
        except Exception as exc:  # reported by /health, then the process exits non-zero
            LOG.exception("pipeline load failed")
            State.error = "%s: %s" % (type(exc).__name__, exc)
            httpd.shutdown()

    threading.Thread(target=_load, daemon=True).start()
    httpd.serve_forever()
    return 1 if State.error else 0


if __name__ == "__main__":
    sys.exit(main())
