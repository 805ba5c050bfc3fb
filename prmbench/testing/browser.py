"""Headless Chromium driven over the DevTools protocol, for tests and benchmarks of the report page.

    with Browser() as b:
        b.open(Path("report.html"))
        b.evaluate("document.querySelectorAll('#board tbody tr').length")
        b.screenshot(Path("shot.png"))

Chromium (Debian's `chromium`; scripts/setup.sh installs it where apt-get is available, or set
PRMBENCH_CHROMIUM) starts with a fresh profile, no network services and the debugging port on
127.0.0.1 only; the websocket client is the `websocket-client` package (a dev dependency).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")


def find_chromium() -> str | None:
    """The Chromium binary: $PRMBENCH_CHROMIUM, else `chromium` or `chromium-browser` on PATH."""
    env = os.environ.get("PRMBENCH_CHROMIUM")
    if env:
        return env
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page, driven synchronously over its DevTools websocket."""

    def __init__(self, width: int = 1280, height: int = 1000, timeout: float = 60.0):
        import websocket  # websocket-client

        binary = find_chromium()
        if binary is None:
            raise RuntimeError("no chromium found: install Debian's `chromium` (scripts/setup.sh does) or set PRMBENCH_CHROMIUM")
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="prmbench-chromium-")
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self._profile.name}",
                                      f"--window-size={width},{height}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port = self._port()
            page = self._page_target(port)
            self.ws = websocket.create_connection(page, timeout=timeout, suppress_origin=True)
        except BaseException:
            self.close()
            raise
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False})

    def _port(self) -> int:
        marker = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self.proc.returncode} before it listened")
            if marker.is_file():
                text = marker.read_text().split()
                if text:
                    return int(text[0])
            time.sleep(0.05)
        raise RuntimeError("chromium did not open its debugging port in time")

    def _page_target(self, port: int) -> str:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.05)
        raise RuntimeError("chromium opened no page")

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one DevTools command and return its result (events that arrive meanwhile are kept)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method: str) -> dict[str, Any]:
        """Wait for the next event `method` (one already received counts)."""
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == method:
                return msg
            self.events.append(msg)

    def open(self, path: Path) -> float:
        """Load a local file and wait for its load event; returns the seconds it took."""
        self.events.clear()
        t0 = time.perf_counter()
        self.call("Page.navigate", {"url": Path(path).resolve().as_uri()})
        self.wait_event("Page.loadEventFired")
        return time.perf_counter() - t0

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (exceptions raise)."""
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails'].get('exception', res['exceptionDetails'])}")
        return res.get("result", {}).get("value")

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """A PNG of the viewport (or the whole page) to `path`."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        """Stop Chromium and remove its profile."""
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._profile.cleanup()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
