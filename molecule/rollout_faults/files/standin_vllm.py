"""Stand-in for vLLM's OpenAI API when the vllm role is not part of the scenario.

Only what the dashboard routes need: GET /health, GET /v1/models and a streamed
POST /v1/chat/completions (SSE chunks with a pause between them, so a test can tell an
unbuffered proxy from a buffering one by when the first chunk arrives).
"""
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "standin-tiny"
CHUNKS = 5
PAUSE = 0.6


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _json(self, code, payload):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            return self._json(200, {})
        if self.path == "/v1/models":
            return self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        return self._json(404, {"error": self.path})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/v1/chat/completions":
            return self._json(404, {"error": self.path})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(CHUNKS):
            event = {"object": "chat.completion.chunk", "model": MODEL, "sent_at": time.time(),
                     "choices": [{"index": 0, "delta": {"content": "tok%d " % i}}]}
            self._chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
            time.sleep(PAUSE)
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
