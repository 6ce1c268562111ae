"""A stand-in for an OpenAI-compatible model server, for tests that run `prover` as a user
would (a subprocess with `PROVER_MODEL_BACKEND=openai`): it answers `/v1/models`,
`/v1/completions` and `/v1/chat/completions` with text computed from the prompt (the message
list, for chat), with token log-probabilities when asked, optionally slowly, and records what
it was asked."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "stub-prover"


@dataclass
class StubServer:
    url: str
    prompts: list[str] = field(default_factory=list)  # of /v1/completions
    chats: list[list[dict[str, str]]] = field(default_factory=list)  # of /v1/chat/completions

    def env(self) -> dict[str, str]:
        """The settings that point `prover` at this server."""
        return {"PROVER_MODEL_BACKEND": "openai", "PROVER_OPENAI_BASE_URL": self.url,
                "PROVER_MODEL": MODEL}


@contextlib.contextmanager
def openai_stub(reply: Callable[[Any], str | list[str]], delay: float = 0.0
                ) -> Iterator[StubServer]:
    """Serve on a free loopback port until the block ends; `reply(prompt)` is each choice (or a
    list: one text per choice, in turn), with the prompt text for /v1/completions and the
    message list for /v1/chat/completions."""
    stub = StubServer("")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            chat = self.path.endswith("/chat/completions")
            if chat:
                stub.chats.append(request["messages"])
            else:
                stub.prompts.append(request["prompt"])
            if delay:
                time.sleep(delay)
            n = request.get("n", 1)
            answer = reply(request["messages"] if chat else request["prompt"])
            texts = answer if isinstance(answer, list) else [answer]
            choices: list[dict[str, object]] = [
                {"index": i, "finish_reason": "stop",
                 **({"message": {"role": "assistant", "content": texts[i % len(texts)]}} if chat
                    else {"text": texts[i % len(texts)]})}
                for i in range(n)]
            if request.get("logprobs") is not None and request["logprobs"] is not False:
                # As vLLM: one entry per sampled token, in each endpoint's shape.
                for i, c in enumerate(choices):
                    text = texts[i % len(texts)]
                    c["logprobs"] = (
                        {"content": [{"token": text, "logprob": -0.25},
                                     {"token": "", "logprob": -0.5}]} if chat
                        else {"tokens": [text], "token_logprobs": [-0.25, -0.5]})
            self._send({"choices": choices,
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5 * n}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
