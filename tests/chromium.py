"""Headless Chromium driven over the DevTools protocol: load a page, evaluate
JavaScript in it (to read Bokeh's documents), collect its errors, screenshot it.

Used by the tests and by scripts/screenshots.py. Needs Debian's ``chromium``
and the ``websocket-client`` package.
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
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

# Reads every named ColumnDataSource of the page's first Bokeh document: {name: {column: [values]}}.
BOKEH_SOURCES_JS = """
(() => {
  if (typeof Bokeh === "undefined" || !Bokeh.documents.length) return null;
  const out = {};
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if (m.data === undefined || !m.name) continue;
      const cols = {};
      for (const [k, v] of Object.entries(m.data)) cols[k] = Array.from(v, x => (typeof x === "number" || typeof x === "string") ? x : String(x));
      out[m.name] = cols;
    }
  }
  return out;
})()
"""


class Chromium:
    """One headless browser with one tab; use as a context manager."""

    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        import websocket   # websocket-client

        if CHROMIUM is None:
            raise RuntimeError("chromium is not installed (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="exoflow-chromium-")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--window-size={width},{height}", "--remote-debugging-port=0",
             "--remote-allow-origins=*", f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start")
            time.sleep(0.05)
        port = int(open(port_file).read().split()[0])
        for _ in range(100):
            tabs = [t for t in json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
                    if t.get("type") == "page"]
            if tabs:
                break
            time.sleep(0.05)
        self.ws = websocket.create_connection(tabs[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.seq = 0
        self.errors: list[str] = []      # uncaught exceptions and console errors
        self.loaded = False
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(method)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _event(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            self.errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.errors.append(params["entry"].get("text", "error"))
        elif method == "Page.loadEventFired":
            self.loaded = True

    def call(self, method: str, **params: Any) -> dict:
        self.seq += 1
        self.ws.send(json.dumps({"id": self.seq, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.seq:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def open(self, url: str, timeout: float = 30) -> None:
        self.loaded = False
        self.call("Page.navigate", url=url)
        deadline = time.time() + timeout
        while not self.loaded and time.time() < deadline:
            self.evaluate("1")     # pumps events
            time.sleep(0.05)

    def evaluate(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"javascript error: {r['exceptionDetails'].get('text')}")
        return r.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 20) -> Any:
        """Evaluate ``expression`` until it is truthy; return its value (or the last one)."""
        deadline = time.time() + timeout
        value = None
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        return value

    def bokeh_sources(self) -> dict[str, dict[str, list]] | None:
        return self.evaluate(BOKEH_SOURCES_JS)

    def screenshot(self, path: str) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
