"""A small OpenAI-compatible HTTP server for provider tests: answers, fails, hangs or refuses as told."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextlib.contextmanager
def fake_openai_server(
    fail_every: int = 0, hang_s: float = 0.0, refuse_with: int | None = None, received: list[str] | None = None
) -> Iterator[str]:
    """Yield a base URL (`.../v1`). Every `fail_every`-th chat request gets a 500; each waits `hang_s`.
    `refuse_with`: every request (models and chat) gets that status, with a body that echoes the
    Authorization header it came with, as careless providers do. `received` collects those headers."""
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

        def refused(self) -> bool:
            sent = self.headers.get("Authorization", "")
            if received is not None:
                received.append(sent)
            if refuse_with is None:
                return False
            self.reply(refuse_with, {"error": {"message": f"rejected credentials: {sent}", "header": sent}})
            return True

        def do_GET(self) -> None:
            if not self.refused():
                self.reply(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.refused():
                return
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
