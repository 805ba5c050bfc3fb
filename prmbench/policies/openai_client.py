"""A small, dependency-free client for OpenAI-compatible HTTP servers (`/v1/models`, `/v1/completions`).

It does one job: send JSON bodies, in parallel up to a bound, and return the decoded answers
in order. Transient failures (connection refused or reset, timeouts, HTTP 429 and 5xx) are
retried with exponential backoff; when the retries run out the error names the server's URL.
A request the server refuses (any other 4xx, e.g. an unknown model or parameter) is not
retried: it is a user error (ConfigError), and the server's own message is quoted.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from prmbench.errors import ConfigError

#: HTTP statuses worth retrying: rate limited, server overloaded or restarting.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class ServerUnavailable(ConfigError):
    """The server could not be reached (or kept failing) after all retries."""


@dataclass(frozen=True)
class ClientSettings:
    """Connection settings: where, how long to wait, how often to retry, how many at once."""

    base_url: str
    api_key: str | None = None
    timeout: float = 600.0
    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 20.0
    max_concurrent_requests: int = 8


def _server_message(body: bytes) -> str:
    """The human part of an error body ({"error": {"message": ...}}, {"detail": ...} or text)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            return str(err)[:300]
    return text[:300]


class OpenAIClient:
    """Talks to one OpenAI-compatible server; thread-safe, one HTTP connection per request."""

    def __init__(self, settings: ClientSettings):
        if settings.max_concurrent_requests < 1:
            raise ConfigError(f"max_concurrent_requests must be >= 1 (got {settings.max_concurrent_requests})")
        if settings.retries < 0:
            raise ConfigError(f"retries must be >= 0 (got {settings.retries})")
        if not settings.timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds (got {settings.timeout})")
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()

    # -- one request ----------------------------------------------------------------------------
    def _once(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.settings.api_key:
            req.add_header("Authorization", f"Bearer {self.settings.api_key}")
        with urllib.request.urlopen(req, timeout=self.settings.timeout) as resp:
            return json.loads(resp.read())

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """Send one request with retries; returns the decoded JSON answer."""
        url = self.base_url + path
        last = ""
        for attempt in range(self.settings.retries + 1):
            if attempt and self._closed.wait(min(self.settings.max_backoff, self.settings.backoff * 2 ** (attempt - 1))):
                break  # closed (the run ends or was interrupted): stop retrying at once
            try:
                return self._once(method, path, body)
            except urllib.error.HTTPError as e:
                msg = _server_message(e.read())
                if e.code in RETRY_STATUSES:
                    last = f"HTTP {e.code}: {msg}"
                    continue
                if e.code in (401, 403):
                    raise ConfigError(f"the server at {url} refused the API key (HTTP {e.code}: {msg}); set the "
                                      f"variable named by --policy-args api_key_env=VAR") from None
                raise ConfigError(f"the server at {url} refused the request (HTTP {e.code}: {msg})") from None
            except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError, OSError) as e:
                reason = getattr(e, "reason", e)
                last = f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
            except ValueError as e:  # not JSON
                raise ConfigError(f"the server at {url} sent an answer that is not JSON ({e}); is base_url "
                                  f"the OpenAI-compatible root (ending in /v1)?") from None
        tries = self.settings.retries + 1
        raise ServerUnavailable(
            f"cannot reach the OpenAI-compatible server at {url} ({last}; {tries} attempt(s)); start the server "
            f"or pass its address with --policy-args base_url=http://HOST:PORT/v1"
        )

    # -- endpoints ------------------------------------------------------------------------------
    def models(self) -> list[str]:
        """Ids of the models the server serves (GET /models)."""
        data = self.request("GET", "/models")
        items = data.get("data", []) if isinstance(data, dict) else []
        return [str(m["id"]) for m in items if isinstance(m, dict) and "id" in m]

    def complete_many(self, bodies: Sequence[Mapping[str, Any]],
                      on_done: Callable[[int, Any, float], None] | None = None) -> list[Any]:
        """POST every body to /completions, at most `max_concurrent_requests` at once.

        Answers come back in the order of `bodies`. `on_done(i, answer, seconds)` is called as
        each one arrives. The first error cancels the requests not yet sent and is raised.
        """
        results: list[Any] = [None] * len(bodies)

        def one(i: int) -> None:
            t0 = time.perf_counter()
            results[i] = self.request("POST", "/completions", bodies[i])
            if on_done is not None:
                on_done(i, results[i], time.perf_counter() - t0)

        if len(bodies) <= 1 or self.settings.max_concurrent_requests == 1:
            for i in range(len(bodies)):
                one(i)
            return results
        futures = [self._executor().submit(one, i) for i in range(len(bodies))]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in pending:
            f.cancel()
        wait(pending)
        for f in futures:
            if f.done() and not f.cancelled() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
        return results

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.max_concurrent_requests, thread_name_prefix="prmbench-http")
            return self._pool

    def close(self) -> None:
        """Stop retrying and stop the worker threads (requests in flight end with their socket)."""
        self._closed.set()
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
