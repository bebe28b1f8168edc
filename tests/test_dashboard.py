"""``make dashboard`` on a tiny subset: results saved, graphs published, the page renders.

The run goes through :mod:`asv_benchmarks.suite` with a copy of ``asv.conf.json``
whose results and HTML folders are temporary. The page is then loaded in a
headless Chromium when one is installed (Debian: ``apt-get install chromium``);
without one that check is skipped (a fresh CI machine has none).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from asv_benchmarks.offline import localize

ROOT = Path(__file__).resolve().parents[1]
#: One cheap benchmark per area: roots, general matrices, the optimizer.
BENCHMARKS = (
    "benchmarks_spd.NewtonCostSPD.track_iterations",
    "benchmarks_general.InverseRootGeneral.track_residual",
    "benchmarks_shampoo.ShampooStateMemory.track_state_bytes",
)
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """Run the dashboard command for the current commit on :data:`BENCHMARKS`."""
    pytest.importorskip("asv")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout: asv files results under a commit")
    tmp = tmp_path_factory.mktemp("asv")
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    conf.update(
        repo=str(ROOT),
        benchmark_dir=str(ROOT / "asv_benchmarks"),
        env_dir=str(tmp / "env"),
        results_dir=str(tmp / "results"),
        html_dir=str(tmp / "html"),
    )
    config = tmp / "asv.conf.json"
    config.write_text(json.dumps(conf))
    cmd = [sys.executable, "-m", "asv_benchmarks.suite", "dashboard", "--config", str(config)]
    for name in BENCHMARKS:
        # asv matches a parameterized benchmark as "name(param, ...)"
        cmd += ["--bench", "^" + re.escape(name) + r"(\(|$)"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp / "html", proc.stdout


@pytest.mark.slow
def test_published_html_holds_a_graph_per_benchmark(dashboard):
    html, out = dashboard
    assert "preview --config" in out and "http://127.0.0.1:8080/" in out
    index = json.loads((html / "index.json").read_text())
    assert index["revision_to_hash"], "no commit in the dashboard"
    for name in BENCHMARKS:
        assert name in index["benchmarks"], name
        graphs = list((html / "graphs").rglob(f"{name}.json"))
        assert graphs, f"no graph for {name}"
        points = json.loads(graphs[0].read_text())
        # one point per commit: [revision, values]; every parameter combination measured
        (revision, values), *_ = points
        values = values if isinstance(values, list) else [values]
        assert values and all(v is not None for v in values), (name, values)


def _browser() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


@pytest.mark.slow
def test_graphs_render_in_a_headless_browser(dashboard, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip(
            "no Chromium installed (Debian: apt-get install chromium); the published "
            "files are checked by test_published_html_holds_a_graph_per_benchmark"
        )
    html, _ = dashboard
    # asv's page takes its scripts from public CDNs; serve them from the page's folder
    # (make dashboard OFFLINE=1), fetched from the npm registry, so that the check needs
    # no CDN.
    try:
        localize(html, ROOT / ".asv" / "npm-cache")
    except RuntimeError as exc:
        pytest.skip(f"the dashboard's scripts could not be fetched: {exc}")
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        for name in ("", *BENCHMARKS):
            dom, console = _load(browser, f"{base}#{name}" if name else base, tmp_path)
            # asv's page logs nothing when all goes well: any message is a failure
            assert not console, (name, console)
            assert "failed to load" not in dom, dom[-2000:]
            if name:
                # the graph view draws its plot with flot on canvases
                assert 'class="flot-base"' in dom, (name, dom[-2000:])
            else:
                # the grid view: one plot per benchmark
                for b in BENCHMARKS:
                    assert f'{b.split(".", 1)[1]}" class="benchmark-plot"' in dom, b
    finally:
        server.shutdown()


def _load(browser: str, url: str, tmp_path: Path) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and the page's console messages."""
    profile = tmp_path / f"profile-{abs(hash(url))}"
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=20000", "--dump-dom", url,
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=180, env={**os.environ, "HOME": str(tmp_path)}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test's output is the assertions, not the access log
        pass
