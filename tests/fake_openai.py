"""A local server speaking the OpenAI chat and completions API, for tests and benches.

It answers on 127.0.0.1 from a background thread, records every request (arrival time, body,
headers) and can be scripted per request: an error status with ``Retry-After``, a delay, a
malformed body, DeepSeek's ``reasoning_content``. Bodies are the openai library's own response
types. The text is derived from the prompt and seed (choice ``i`` of a request with seed ``s``
says ``seed=s+i``, as vLLM seeds its children), so a test can tell which sample got which seed.

Run standalone (for benches, outside the client's process): ``python -m tests.fake_openai --port 0``
prints ``port: N`` once it listens.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from openai.types import Completion, CompletionChoice, CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice


@dataclass(frozen=True)
class Reply:
    """How to answer one request; the default is a normal completion."""

    status: int = 200
    retry_after: float | None = None
    delay_s: float = 0.0
    malformed: bool = False  # a 200 whose JSON is cut off
    raw: bytes | None = None  # exactly this body (valid JSON of the wrong shape, HTML, an error's own text)
    reasoning: str | None = None  # sent as the message's reasoning_content (chat only)


@dataclass
class Received:
    """One request as the server saw it; ``attempt`` counts earlier requests with the same prompt and seed."""

    start: float  # time.monotonic() on arrival
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    attempt: int
    end: float = 0.0  # when the answer was ready to send
    status: int = 0
    tokens: int = 0  # prompt + completion tokens in the usage sent back


Fault = Callable[[dict[str, Any], int], Reply | None]


def prompt_of(body: dict[str, Any]) -> str:
    """The prompt text of a request: the last message's content, or the completion prompt."""
    if "messages" in body:
        return str(body["messages"][-1]["content"])
    return str(body.get("prompt", ""))


def echo(prompt: str, seed: int | None, index: int) -> str:
    """The deterministic text of choice ``index``; its length depends on the seed, so choices differ."""
    sample_seed = None if seed is None else seed + index
    padding = " ok" * ((sample_seed or 0) % 3)
    return f"seed={sample_seed} answer to {prompt}{padding}"


def count_tokens(text: str) -> int:
    return len(text.split())


def worst_excess(
    received: list[Received], amount: Callable[[Received], float], per_minute: float, burst: float
) -> float:
    """The most that any window between two arrivals carried beyond ``rate * window + burst``.

    Windows are measured on the server's arrival times, so requests reserved just before a window
    and delivered inside it count there: callers allow a little slack for that.
    """
    arrivals = sorted((r.start, amount(r)) for r in received)
    rate = per_minute / 60.0
    worst = float("-inf")
    for i, (start, _) in enumerate(arrivals):
        carried = 0.0
        for end, value in arrivals[i:]:
            carried += value
            worst = max(worst, carried - (rate * (end - start) + burst))
    return worst


@dataclass
class _State:
    default: Reply
    fault: Fault | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: list[Received] = field(default_factory=list)
    scripts: dict[tuple[str, int | None], deque[Reply]] = field(default_factory=dict)
    attempts: dict[tuple[str, str, int | None], int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    models: tuple[str, ...] = ()
    api_key: str | None = None


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # clients open many connections at once; the default backlog of 5 resets them


class FakeOpenAI:
    """The server; use as a context manager or call ``start``/``stop``. ``url`` is the base URL with ``/v1``."""

    def __init__(
        self,
        *,
        default: Reply = Reply(),  # noqa: B008
        fault: Fault | None = None,
        port: int = 0,
        models: tuple[str, ...] = (),
        api_key: str | None = None,
    ):
        """``models``: what ``GET /models`` lists (chat and completions take any model); ``api_key``: the
        bearer key ``GET /models`` requires, answering 401 to any other."""
        self._state = _State(default=default, fault=fault, models=models, api_key=api_key)
        self._server = _Server(("127.0.0.1", port), _handler(self._state))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def received(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.received)

    @property
    def max_in_flight(self) -> int:
        return self._state.max_in_flight

    def script(self, prompt: str, *replies: Reply, seed: int | None = None) -> None:
        """Answer the next requests for ``prompt`` (and ``seed``, if given) with ``replies``, in order."""
        with self._state.lock:
            self._state.scripts.setdefault((prompt, seed), deque()).extend(replies)

    def set_fault(self, fault: Fault | None) -> None:
        """``fault(body, attempt)`` picks the reply of every unscripted request; None: the default reply."""
        self._state.fault = fault

    def reset(self) -> None:
        with self._state.lock:
            self._state.received.clear()
            self._state.attempts.clear()
            self._state.scripts.clear()
            self._state.max_in_flight = self._state.in_flight

    def start(self) -> FakeOpenAI:
        # A short poll: stop() waits up to one poll interval (0.5 s by default), paid by every test that uses it.
        serve = self._server.serve_forever
        self._thread = threading.Thread(target=serve, args=(0.02,), name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _choose(state: _State, body: dict[str, Any], attempt: int) -> Reply:
    prompt, seed = prompt_of(body), body.get("seed")
    with state.lock:
        for key in ((prompt, seed), (prompt, None)):
            queue = state.scripts.get(key)
            if queue:
                return queue.popleft()
    if state.fault is not None:
        reply = state.fault(body, attempt)
        if reply is not None:
            return reply
    return state.default


def _completion_body(path: str, body: dict[str, Any], reply: Reply) -> tuple[bytes, int]:
    """The JSON of a successful answer and the tokens its usage counts."""
    prompt, seed = prompt_of(body), body.get("seed")
    n, max_tokens = int(body.get("n") or 1), int(body.get("max_tokens") or 1 << 30)
    texts, finish = [], []
    for i in range(n):
        words = echo(prompt, seed, i).split()
        finish.append("length" if len(words) > max_tokens else "stop")
        texts.append(" ".join(words[:max_tokens]))
    reasoning_tokens = count_tokens(reply.reasoning or "") * n
    completion_tokens = sum(count_tokens(t) for t in texts) + reasoning_tokens
    prompt_tokens = count_tokens(prompt)
    usage = CompletionUsage(
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens
    )
    common = {"id": f"fake-{seed}", "created": int(time.time()), "model": str(body.get("model")), "usage": usage}
    if path.endswith("/chat/completions"):
        extra = {"reasoning_content": reply.reasoning} if reply.reasoning is not None else {}
        choices = [
            Choice(
                index=i,
                finish_reason=finish[i],  # type: ignore[arg-type]
                message=ChatCompletionMessage(role="assistant", content=texts[i], **extra),
            )
            for i in range(n)
        ]
        response: Any = ChatCompletion(object="chat.completion", choices=choices, **common)
    else:
        completion_choices = [
            CompletionChoice(index=i, text=texts[i], finish_reason=finish[i])  # type: ignore[arg-type]
            for i in range(n)
        ]
        response = Completion(object="text_completion", choices=completion_choices, **common)
    return response.model_dump_json().encode(), usage.total_tokens


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if not self.path.endswith("/models"):
                status, payload = 404, {"error": {"message": f"no route {self.path}"}}
            elif state.api_key and self.headers.get("authorization") != f"Bearer {state.api_key}":
                status, payload = 401, {"error": {"message": "invalid api key", "code": 401}}
            else:
                status, payload = 200, {"object": "list", "data": [{"id": m, "object": "model"} for m in state.models]}
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            start = time.monotonic()
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            body = json.loads(raw or b"{}")
            key = (self.path, prompt_of(body), body.get("seed"))
            with state.lock:
                attempt = state.attempts.get(key, 0)
                state.attempts[key] = attempt + 1
                record = Received(start, self.path, body, {k.lower(): v for k, v in self.headers.items()}, attempt)
                state.received.append(record)
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                reply = _choose(state, body, attempt)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                headers = {"content-type": "application/json"}
                if not self.path.endswith("/completions"):
                    status, payload = 404, json.dumps({"error": {"message": f"no route {self.path}"}}).encode()
                elif reply.status != 200:
                    status = reply.status
                    error = {"error": {"message": f"scripted {reply.status}", "code": status}}
                    payload = reply.raw if reply.raw is not None else json.dumps(error).encode()
                    if reply.retry_after is not None:
                        headers["retry-after"] = f"{reply.retry_after:g}"
                elif reply.malformed:
                    status, payload = 200, b'{"id": "fake", "choices": [{"index": 0, "mess'
                elif reply.raw is not None:
                    status, payload = 200, reply.raw
                else:
                    status = 200
                    payload, record.tokens = _completion_body(self.path, body, reply)
                record.status, record.end = status, time.monotonic()
            finally:
                with state.lock:  # before sending, so a client never sees more in flight than it sent
                    state.in_flight -= 1
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                self.close_connection = True  # the client gave up (its timeout) and hung up

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake OpenAI API until interrupted.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay of every answer")
    parser.add_argument(
        "--lognormal-sigma",
        type=float,
        default=0.0,
        help="make the delay lognormal with median --delay-ms and this sigma, drawn from the prompt and seed "
        "(the same request always takes as long)",
    )
    args = parser.parse_args()
    server = FakeOpenAI(default=Reply(delay_s=args.delay_ms / 1000), port=args.port)
    if args.lognormal_sigma > 0:

        def lognormal(body: dict[str, Any], attempt: int) -> Reply:
            draw = random.Random(f"{prompt_of(body)}\x1f{body.get('seed')}").lognormvariate(0.0, args.lognormal_sigma)
            return Reply(delay_s=args.delay_ms / 1000 * draw)

        server.set_fault(lognormal)
    print(f"port: {server.port}", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
