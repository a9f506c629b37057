"""Uploads in a real browser: the retrieval demo started as `poseembroider demo core` starts it (a streamlit
server, `demos.build_command`), driven by headless Chromium through playwright, over a tiny world.

Checked: the server listens on the loopback interface only (its listening socket in /proc/net/tcp*); a text
file, a decompression bomb and a 1 x 1 picture uploaded through the page's file input each get the error
naming the file, and a picture uploaded after them gives the query crop (the app stayed up). The page is
screenshotted after the bomb; with POSEEMBROIDER_SCREENSHOT_DIR set the screenshot is also saved there as
`demo_upload_rejected.png` (docs/ holds the one of the last such run). Skipped without playwright (`pip install
playwright`) or a Chromium (the system's /usr/lib/chromium/chromium, or playwright's own).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from reliability_uploads import BAD_UPLOADS, reference_picture, with_orientation

from intermodality_world import make_intermodality_world
from poseembroider import config
from poseembroider.demos import build_command

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread", "procedural_model_file")]

SYSTEM_CHROMIUM = Path("/usr/lib/chromium/chromium")
SCREENSHOT_NAME = "demo_upload_rejected.png"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port` (from /proc/net/tcp and tcp6, state 0A)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:
                if width == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:
                    words = [bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, 32, 8)]
                    found.add(socket.inet_ntop(socket.AF_INET6, b"".join(words)))
    return found


def _environment() -> dict[str, str]:
    """The session's isolated configuration, for the server process."""
    env = dict(os.environ)
    for name in (
        "DATA_CACHE_DIR",
        "SYNTH_DATA_DIR",
        "MODELS_ROOT",
        "GENERAL_EXP_OUTPUT_DIR",
        "PROCEDURAL_BODY_MODEL_PATH",
    ):
        env[f"{config.ENV_PREFIX}{name}"] = str(getattr(config, name))
    env["OMP_NUM_THREADS"] = "1"
    env["STREAMLIT_SERVER_FILE_WATCHER_TYPE"] = "none"  # no "File change" banner when sources are edited meanwhile
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A running retrieval demo over a tiny world: (base URL, port, query string)."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not SYSTEM_CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("no Chromium on this machine")
    world = make_intermodality_world(tmp_path_factory.mktemp("browser"), "browserworld", n_train=3, n_val=4)
    port = _free_port()
    process = subprocess.Popen(
        build_command("core", ["--server.port", str(port)]),
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://localhost:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.5)
            if process.poll() is not None:
                pytest.fail(f"the demo server stopped: {process.stdout.read()[-3000:]}")
        else:
            pytest.fail("the demo server did not answer within 2 minutes")
        query = urllib.parse.urlencode({"model": str(world["models"]["PoseEmbroider"]), "dataset": world["script"]})
        yield {"base": base, "port": port, "query": query, "playwright": playwright}
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.reliability(area="uploads", subject="`poseembroider demo` listens on localhost only (a started server)")
def test_the_demo_server_listens_on_the_loopback_interface_only(server, cases):
    cases.tried()
    addresses = _listening_addresses(server["port"])
    assert addresses, f"nothing listens on port {server['port']}"
    assert addresses <= {"127.0.0.1", "::1"}, addresses


@pytest.mark.reliability(area="uploads", subject="bad uploads through the page in headless Chromium (playwright)")
def test_bad_uploads_through_the_page_get_a_message_and_the_app_stays_up(server, cases, tmp_path):
    executable = str(SYSTEM_CHROMIUM) if SYSTEM_CHROMIUM.exists() else shutil.which("chromium")
    with server["playwright"].sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"], headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(f"{server['base']}/?{server['query']}")
        page.get_by_text("Any-to-any retrieval").first.wait_for()
        page.get_by_text("an uploaded picture").click()
        page.get_by_text("Upload a picture").first.wait_for()
        for what in ("plain text", "decompression bomb PNG 100000 x 100000 (header)", "1 x 1 PNG"):
            name, data, phrase = BAD_UPLOADS[what]
            cases.tried()
            page.locator("input[type=file]").set_input_files(
                {"name": name, "mimeType": "image/png" if name.endswith(".png") else "image/jpeg", "buffer": data}
            )
            alert = page.get_by_text(f"{name}: ").first
            alert.wait_for()
            assert phrase in alert.inner_text(), (what, alert.inner_text())
            if what.startswith("decompression bomb"):
                page.screenshot(path=str(tmp_path / SCREENSHOT_NAME), full_page=True)
        cases.tried()
        page.locator("input[type=file]").set_input_files(
            {"name": "phone.jpg", "mimeType": "image/jpeg", "buffer": with_orientation(reference_picture(), 6)}
        )
        page.get_by_text("image crop (256x192)").first.wait_for()
        assert not page.get_by_text("phone.jpg: ").count()
        browser.close()
    assert (tmp_path / SCREENSHOT_NAME).stat().st_size > 10_000
    target = os.environ.get("POSEEMBROIDER_SCREENSHOT_DIR")
    if target:
        shutil.copyfile(tmp_path / SCREENSHOT_NAME, Path(target) / SCREENSHOT_NAME)
