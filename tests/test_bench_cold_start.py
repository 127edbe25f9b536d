"""The cold-start benchmark: its HTTP poller against stand-in apps, and a real import timing."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from bench import bench_cold_start as cold

FAKE_APP = textwrap.dedent("""
    import argparse, http.server, sys, time
    p = argparse.ArgumentParser(); p.add_argument("--preset"); p.add_argument("--host")
    p.add_argument("--port", type=int); a = p.parse_args()
    mode = {mode!r}
    if mode == "crash":
        sys.exit(3)
    time.sleep(0.3)
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if mode == "ok" else 503); self.end_headers(); self.wfile.write(b"hi")
        def log_message(self, *args):
            pass
    http.server.HTTPServer((a.host, a.port), H).serve_forever()
""")


def _fake(tmp_path, mode):
    path = tmp_path / f"fake_{mode}.py"
    path.write_text(FAKE_APP.format(mode=mode))
    return path


def test_first_page_waits_for_http_200(tmp_path):
    seconds = cold.time_first_page(sys.executable, "tiny", timeout_s=30, app=_fake(tmp_path, "ok"))
    assert seconds >= 0.3  # the stand-in sleeps 0.3 s before it listens


def test_first_page_reports_an_app_that_exits(tmp_path):
    with pytest.raises(RuntimeError, match="exited with 3"):
        cold.time_first_page(sys.executable, "tiny", timeout_s=30, app=_fake(tmp_path, "crash"))


def test_first_page_is_bounded(tmp_path):
    with pytest.raises(TimeoutError, match="within 2 s"):
        cold.time_first_page(sys.executable, "tiny", timeout_s=2, app=_fake(tmp_path, "503"))


def test_cli_alternates_rounds_and_writes_json(tmp_path):
    out = tmp_path / "cold.json"
    code = cold.main(["--only", "import_app,first_page", "--repeat", "2", "--app",
                      str(_fake(tmp_path, "ok")), "--json", str(out)])
    assert code == 0
    rows = {r["measure"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"import_app", "first_page"}
    for row in rows.values():
        assert row["status"] == "ok" and row["runs"] == 2 and len(row["all_s"]) == 2
        assert 0 < row["min_s"] <= row["median_s"] <= row["max_s"]


def test_a_failing_measure_is_reported_not_raised(tmp_path):
    out = tmp_path / "cold.json"
    code = cold.main(["--only", "first_page", "--app", str(_fake(tmp_path, "crash")),
                      "--json", str(out)])
    assert code == 1
    (row,) = json.loads(out.read_text())["rows"]
    assert row["status"].startswith("error: RuntimeError")
