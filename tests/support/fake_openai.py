"""A small OpenAI-compatible HTTP server for provider tests: answers, fails or hangs as told."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextlib.contextmanager
def fake_openai_server(fail_every: int = 0, hang_s: float = 0.0) -> Iterator[str]:
    """Yield a base URL (`.../v1`). Every `fail_every`-th chat request gets a 500; each waits `hang_s`."""
    counter = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self.reply(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            number = next(counter)
            time.sleep(hang_s)
            if fail_every and number % fail_every == 0:
                self.reply(500, {"error": {"message": "overloaded"}})
                return
            answer = f"answer {number} to {request['messages'][-1]['content']}"
            self.reply(
                200,
                {
                    "model": "fake-model-v3",
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
                    ],
                },
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
