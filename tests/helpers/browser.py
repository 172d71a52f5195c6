"""The OHIF viewer in headless Chromium: its prebuilt bundle from npm (cached outside the repository),
served from its own loopback port, and a WebDriver session whose network log the test reads.

What is missing on a machine (npm, Chromium, chromedriver) is a skip reason, never a failure;
a download that npm starts and cannot finish is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# `@ohif/viewer` is OHIF's packaged standalone viewer: one UMD bundle with its web worker and codecs inlined.
OHIF_VIEWER = "@ohif/viewer@4.12.51"
CACHE = Path(os.environ.get("OHIF_VIEWER_CACHE", Path.home() / ".cache" / "dicomsvc" / "ohif-viewer-4.12.51"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

# The package's own index.html loads a polyfill from a CDN; this page loads only the bundle and its config.
INDEX_HTML = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"/><link rel="icon" href="data:,"/><title>OHIF Viewer</title></head>
<body><div id="root"></div>
<script src="/app-config.js"></script><script src="/index.umd.js"></script>
<script>window.OHIFViewer.installViewer(window.config, "root", function () {});</script>
</body></html>"""


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        return f"needs Chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER}); not installed"
    if not (CACHE / "index.umd.js").exists() and shutil.which("npm") is None:
        return f"needs npm (node) to fetch {OHIF_VIEWER} once into {CACHE}; not installed"
    return None


def ohif_bundle() -> Path:
    """The directory holding the viewer's `index.umd.js`, fetched with `npm pack` on first use."""
    if (CACHE / "index.umd.js").exists():
        return CACHE
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE.parent) as work:
        # `npm pack` downloads the one tarball, none of the package's dependencies.
        subprocess.run(["npm", "pack", OHIF_VIEWER, "--pack-destination", work, "--silent"], check=True,
                       timeout=300, capture_output=True)  # fmt: skip
        (tarball,) = Path(work).glob("*.tgz")
        with tarfile.open(tarball) as archive:
            member = archive.getmember("package/dist/index.umd.js")
            archive.extractall(work, members=[member], filter="data")
        staged = Path(work) / "dist"
        (Path(work) / "package" / "dist").rename(staged)
        staged.rename(CACHE)  # atomic: a half-fetched bundle never looks cached
    return CACHE


def app_config(api: str) -> bytes:
    """OHIF's `window.config` for one DICOMweb server at `api` (QIDO, WADO-RS, WADO-URI)."""
    server = {
        "name": "dicomsvc", "qidoRoot": api, "wadoRoot": api, "wadoUriRoot": f"{api}/wado",
        "qidoSupportsIncludeField": True, "imageRendering": "wadors", "thumbnailRendering": "wadors",
        "enableStudyLazyLoad": True, "supportsFuzzyMatching": True,
    }  # fmt: skip
    config = {"routerBasename": "/", "showStudyList": True, "servers": {"dicomWeb": [server]}}
    return f"window.config = {json.dumps(config)};".encode()


@contextmanager
def viewer_server(bundle: Path, api: str, *, port: int) -> Iterator[str]:
    """The viewer on its own loopback port (another origin than the API); yields its URL."""
    files = {"/index.umd.js": (bundle / "index.umd.js").read_bytes(), "/app-config.js": app_config(api)}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            body = files.get(path, INDEX_HTML)  # the viewer's own routes (/viewer/{study}) are the page
            self.send_response(200)
            self.send_header("Content-Type", "application/javascript" if path in files else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver that records the network (`NetworkLog`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class NetworkLog:
    """The browser's network events (Chromium's performance log), read as they come.

    `answered`: URLs answered since the last `clear`; `failures`: a status of 400 or more, or a
    request that failed (not one cancelled by leaving the page); `open`: requests sent and not yet
    finished, so a test can wait for the page to go quiet before judging it. `blob:` and `data:`
    URLs (the viewer's in-memory web workers, which never report an end) are left out.
    """

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.answered: list[str] = []
        self.failures: list[str] = []
        self.open: dict[str, str] = {}

    def clear(self) -> None:
        self.answered, self.failures = [], []

    def read(self) -> NetworkLog:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            method, params = message["method"], message["params"]
            if method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith(("blob:", "data:")):
                    self.open[params["requestId"]] = url
            elif method == "Network.responseReceived":
                response = params["response"]
                self.answered.append(response["url"])
                if response["status"] >= 400:
                    self.failures.append(f"{response['status']} {response['url']}")
            elif method == "Network.loadingFinished":
                self.open.pop(params["requestId"], None)
            elif method == "Network.loadingFailed":
                url = self.open.pop(params["requestId"], "")
                if not params.get("canceled"):
                    reason = params.get("blockedReason") or params.get("corsErrorStatus")
                    self.failures.append(f"{params.get('errorText')} ({reason}) {url}")
        return self

    @property
    def idle(self) -> bool:
        return not self.open


# Non-black pixels of the first viewport's canvas (cornerstone draws the image there).
CANVAS_PIXELS_JS = """
const canvas = document.querySelector(".viewport-element canvas");
if (!canvas || !canvas.width) { return 0; }
const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
let lit = 0;
for (let i = 0; i < data.length; i += 4) { if (data[i] > 8 || data[i + 1] > 8 || data[i + 2] > 8) { lit++; } }
return lit;
"""
