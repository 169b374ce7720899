"""Plumbing for the JupyterLab tests: a real server on loopback and a headless Chromium.

:class:`LabServer` starts ``jupyter lab`` as a student would, but on 127.0.0.1 with a
random port and token, no browser, and Jupyter's config, data and runtime folders
in a temporary directory (so neither the user's settings nor an old workspace leak
in, and nothing is written to the home directory). :func:`launch_chromium` drives
Debian's system Chromium with Playwright; nothing here ever downloads a browser.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from secrets import token_hex

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server",
)
WIDGETS_EXTENSION = "@jupyter-widgets/jupyterlab-manager"

# JupyterLab settings for a quiet, inspectable page: every cell attached to the DOM
# (no virtual scrolling), and no news or update check asking for the network.
_LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
}


def require_browser():
    """Playwright's sync API and the system Chromium's path; skips the test without them."""
    import pytest

    api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')")
    browser = chromium_path()
    if browser is None:
        pytest.skip("no Chromium at /usr/bin/chromium (or $COURSEKIT_CHROMIUM): run "
                    "`bash .ci/system-deps` as root to install Debian's chromium")
    return api, browser


def save_artifact(path: Path, record_property, folder: str = "") -> None:
    """Record a screenshot with the test and copy it to ``$COURSEKIT_ARTIFACTS[/folder]``."""
    record_property(path.stem, str(path))
    print(f"screenshot: {path}")
    artifacts = os.environ.get("COURSEKIT_ARTIFACTS")
    if artifacts:
        target = Path(artifacts) / folder
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)


def chromium_path() -> str | None:
    """The system Chromium (``$COURSEKIT_CHROMIUM`` or /usr/bin/chromium), if installed."""
    path = os.environ.get("COURSEKIT_CHROMIUM", CHROMIUM)
    return path if Path(path).is_file() and os.access(path, os.X_OK) else None


class LabServer:
    """``jupyter lab [args]`` on 127.0.0.1, a free port and a fresh token.

    Parameters
    ----------
    cwd : Path
        Folder the server starts in (its root unless ``args`` say otherwise).
    home : Path
        Empty folder for Jupyter's config, data and runtime directories.
    args : sequence of str
        Extra command-line arguments, e.g. those of the README's command.
    env : dict, optional
        Extra environment variables for the server and its kernels.
    """

    def __init__(self, cwd: Path, home: Path, args: tuple[str, ...] | list[str] = (),
                 env: dict[str, str] | None = None):
        self.cwd = Path(cwd)
        self.home = Path(home)
        self.token = token_hex(16)
        self.log_path = self.home / "server.log"
        self.command = [
            sys.executable, "-m", "jupyter", "lab", *args,
            "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        self.env = {**os.environ, **(env or {})}
        for name in ("config", "data", "runtime", "ipython"):
            (self.home / name).mkdir(parents=True, exist_ok=True)
        self.env.update(JUPYTER_CONFIG_DIR=str(self.home / "config"),
                        JUPYTER_DATA_DIR=str(self.home / "data"),
                        JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
                        IPYTHONDIR=str(self.home / "ipython"))
        self.env.pop("JUPYTER_CONFIG_PATH", None)
        settings = self.home / "config" / "lab" / "user-settings"
        for plugin, values in _LAB_SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.process: subprocess.Popen | None = None
        self.info: dict = {}

    def start(self, timeout: float = 60.0) -> LabServer:
        """Start the server and wait until it has written its connection file."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        info_file = self.home / "runtime" / f"jpserver-{self.process.pid}.json"
        deadline = time.monotonic() + timeout
        while not self.info:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}:\n"
                                   f"{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not start in {timeout:.0f} s:\n{self.log()}")
            time.sleep(0.2)
            try:
                self.info = json.loads(info_file.read_text())
            except (FileNotFoundError, json.JSONDecodeError):  # not written (completely) yet
                continue
        while True:  # the file can come before the socket accepts (a busy machine)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not accept connections in "
                                       f"{timeout:.0f} s:\n{self.log()}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (and with it its kernels)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self.info["port"])

    def url(self, path: str = "") -> str:
        """Absolute URL of ``path`` (relative to the server's base URL) with the token."""
        return f"http://127.0.0.1:{self.port}{self._path(path)}"

    def _path(self, path: str) -> str:
        separator = "&" if "?" in path else "?"
        return f"/{path.lstrip('/')}{separator}token={self.token}"

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """GET ``path`` without following redirects or any proxy: (status, headers, body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", self._path(path))
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def page_config(self, path: str = "lab") -> dict:
        """The ``jupyter-config-data`` JupyterLab embeds in the page at ``path``."""
        status, _, body = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET /{path} answered {status}")
        match = re.search(rb'<script id="jupyter-config-data" type="application/json">(.*?)'
                          rb"</script>", body, re.S)
        if match is None:
            raise RuntimeError(f"/{path} has no jupyter-config-data")
        return json.loads(match.group(1))

    def browser_open_url(self) -> str:
        """The URL ``jupyter lab`` would open in the student's browser."""
        page = self.home / "runtime" / f"jpserver-{self.info['pid']}-open.html"
        match = re.search(r'url=([^"]+)"', page.read_text())
        if match is None:
            raise RuntimeError(f"no URL in {page}")
        return match.group(1)

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def launch_chromium(playwright, profile: Path, executable: str):
    """A headless Chromium context (fresh profile in ``profile``) driven by Playwright."""
    if profile.exists():
        shutil.rmtree(profile)
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS),
        viewport={"width": 1280, "height": 1000},
    )
