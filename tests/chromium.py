"""Headless Chromium driven through the Chrome DevTools Protocol, over a pipe (no websocket, no
dependency): `--remote-debugging-pipe` reads NUL-separated JSON commands on fd 3 and writes replies
and events on fd 4. Used by scripts/ui_snapshots.py and tests/test_ui_browser.py to look at
`mlflow ui` as a person would. Does not import MLflow.

    with Chromium() as browser:
        page = browser.new_page(1400, 900)
        page.goto(url, ready="document.querySelector('h1')")
        page.screenshot("shot.png")
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

CHROMIUM = "/usr/bin/chromium"  # Debian's package; .ci/run installs it
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars",
         "--remote-debugging-pipe"]

# The window is busy while any of these shows in it: MLflow's (antd / du-bois) spinners and skeletons.
# Below the fold they spin until scrolled to (charts load lazily), so only the ones showing count.
BUSY_JS = """(() => {
  const busy = document.querySelectorAll('[class*="spin-spinning" i], [class*="skeleton" i],'
                                         + ' [role="progressbar"], [aria-busy="true"]');
  return [...busy].some(e => {  // showing: the topmost element at its centre is it or inside it
    const r = e.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
    if (r.height == 0 || x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) return false;
    const top = document.elementFromPoint(x, y);
    return !!top && (e.contains(top) || top.contains(e));
  });
})()"""


# A request is answered once its response headers are in (or it came from the cache).
ANSWERED = ("Network.loadingFinished", "Network.loadingFailed", "Network.responseReceived",
            "Network.responseReceivedExtraInfo", "Network.requestServedFromCache")


def _worker_script(p: dict) -> bool:
    """A web worker's own script (the UI's telemetry worker): it loads in the worker's session, not
    the page's, so whether it finished never reaches us. It is the document of its own request."""
    return not p.get("loaderId") and p.get("documentURL") == p["request"]["url"]


def available() -> bool:
    return os.access(CHROMIUM, os.X_OK)


class CDPError(RuntimeError):
    pass


class Chromium:
    """One headless browser process; stop() ends it by its PID and removes its fresh profile."""

    def __init__(self, binary: str = CHROMIUM, timeout: float = 30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="initstudy-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds_3_and_4():  # in the child, before exec: the protocol's fixed descriptors
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, pass_fds=(3, 4), preexec_fn=fds_3_and_4)
        self.pid = self.proc.pid
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._replies = {}
        self._events = []  # (sessionId, method, params), in arrival order
        self._cond = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.call("Browser.getVersion")  # the pipe answers: the browser is up

    # -- the protocol ------------------------------------------------------------------------------
    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cond:
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._events.append((msg.get("sessionId"), msg["method"], msg.get("params", {})))
                self._cond.notify_all()

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout=None):
        with self._cond:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise CDPError(f"{method}: no reply ({'browser gone' if self._closed else 'timeout'})")
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def events(self, session: str, since: int = 0):
        """This session's events from index `since` of the event log, and the log's length now."""
        with self._cond:
            n = len(self._events)
            return [(m, p) for s, m, p in self._events[since:n] if s == session], n

    def new_page(self, width: int = 1400, height: int = 900) -> "Page":
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, session, width, height)

    # -- lifetime ----------------------------------------------------------------------------------
    def stop(self):
        """Ask the browser to close; after 5 s, kill it by its PID. Then remove the profile."""
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", timeout=5)
            except CDPError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Page:
    def __init__(self, browser: Chromium, session: str, width: int, height: int):
        self.browser, self.session = browser, session
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable")
        self.resize(width, height)

    def call(self, method, params=None, timeout=None):
        return self.browser.call(method, params, session=self.session, timeout=timeout)

    def resize(self, width: int, height: int):
        self.width, self.height = width, height
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def eval(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CDPError(f"{expression[:60]}...: {r['exceptionDetails'].get('text')}"
                           f" {r['exceptionDetails'].get('exception', {}).get('description', '')}")
        return r["result"].get("value")

    def goto(self, url: str, ready: str = "true", timeout: float = 60.0, quiet: float = 0.8):
        """Navigate and wait until the page has settled: loaded, `ready` (a JavaScript expression) true,
        no spinner or skeleton visible, and no network request in flight for `quiet` seconds."""
        _, mark = self.browser.events(self.session)
        nav = self.call("Page.navigate", {"url": url})
        if nav.get("errorText"):
            raise CDPError(f"{url}: {nav['errorText']}")
        # a new document fires a load event; a change of the #fragment alone (the UI's routes) does not
        self.settle(ready, timeout, quiet, since=mark, need_load="loaderId" in nav)

    def reload(self, ready: str = "true", timeout: float = 60.0):
        _, mark = self.browser.events(self.session)
        self.call("Page.reload")
        self.settle(ready, timeout, since=mark, need_load=True)

    def settle(self, ready: str = "true", timeout: float = 60.0, quiet: float = 0.8, since=None, need_load=False,
               spinner_patience: float = 20.0):
        """Wait until loaded, `ready` true, no request in flight for `quiet` s and no spinner showing.
        A spinner still turning after `spinner_patience` s of a quiet network is part of the page
        (a chart that never loads): it is what a person sees, so the wait ends there."""
        if since is None:
            _, since = self.browser.events(self.session)
        start = time.monotonic()
        loaded, inflight, last_net = not need_load, {}, start
        while True:
            events, since = self.browser.events(self.session, since)
            for method, p in events:
                if method == "Page.loadEventFired":
                    loaded = True
                elif method.startswith("Network."):
                    last_net = time.monotonic()  # any traffic (data arriving too) restarts the quiet time
                    if method == "Network.requestWillBeSent" and not _worker_script(p):
                        inflight[p["requestId"]] = p["request"]["url"]
                    elif method in ANSWERED:
                        inflight.pop(p["requestId"], None)
            now = time.monotonic()
            if loaded and not inflight and now - last_net >= quiet and self.eval(f"!!({ready})"):
                if not self.eval(BUSY_JS) or now - max(start, last_net) > spinner_patience:
                    return
            if now - start > timeout:
                raise CDPError(f"page did not settle in {timeout:.0f} s (loaded={loaded}, "
                               f"in flight: {sorted(inflight.values())}, ready={self.eval(f'!!({ready})')}, "
                               f"busy={self.eval(BUSY_JS)}): {self.eval('location.href')}")
            time.sleep(0.1)

    def scroll_to(self, y: int, element: str = "document.scrollingElement", spinner_patience: float = 5.0):
        """Scroll `element` (a JavaScript expression: the page, or an inner scrolling pane) to `y` px
        from its top, then wait for what that brings into view (lazily loaded charts)."""
        self.eval(f"({element}).scrollTop = {int(y)}")
        self.settle(spinner_patience=spinner_patience)

    def screenshot(self, path) -> bytes:
        """A PNG of what the window shows now (the viewport, as a person sees it)."""
        png = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])
        if path:
            with open(path, "wb") as f:
                f.write(png)
        return png
