"""App cold start: seconds from ``python app.py`` to the first served page, and its parts.

    python -m bench.bench_cold_start                       # tiny preset, one round
    python -m bench.bench_cold_start --repeat 3 --json bench/results/cold_start.json

Measures, each in a fresh Python process (so nothing is warm in the interpreter; the OS file cache
is warm after the first round, which is why rounds alternate the measures and the first round is
reported too):

* ``import_app`` — ``import app`` inside the process (what ``python -c "import app"`` pays on top
  of the interpreter), seconds.
* ``import_stack`` — ``import torch, diffusers, transformers, gradio``: the libraries serving needs.
* ``load_components`` — ``load_components(load_config(preset))`` after those imports, seconds.
* ``first_page`` — ``python app.py --preset P --host 127.0.0.1 --port <free>`` started until
  ``GET http://127.0.0.1:<port>/`` answers HTTP 200 (polled every 0.1 s, at most ``--timeout``
  seconds), wall clock from the process start. Independent of what the page shows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # allow `python bench/bench_cold_start.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MEASURES = ("import_app", "import_stack", "load_components", "first_page")

_TIMED_SNIPPETS = {
    "import_app": "import app",
    "import_stack": "import torch, diffusers, transformers, gradio",
    "load_components": ("import torch, diffusers, transformers\n"
                        "from configs import load_config\n"
                        "from models.loading import load_components\n"
                        "config = load_config({preset!r})\n"
                        "t0 = time.perf_counter()\n"
                        "load_components(config)\n"
                        "print('SECONDS', time.perf_counter() - t0)\n"
                        "raise SystemExit(0)\n"),
}


def child_env() -> dict[str, str]:
    """Environment for the measured processes: offline, no analytics, repo on the path."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", TOKENIZERS_PARALLELISM="false",
               PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for key in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        env.pop(key, None)
    return env


def time_snippet(measure: str, python: str, preset: str, timeout_s: float) -> float:
    """Seconds the ``measure`` snippet takes inside a fresh interpreter (its own clock)."""
    body = _TIMED_SNIPPETS[measure].format(preset=preset)
    if "SECONDS" not in body:
        body = f"t0 = time.perf_counter()\n{body}\nprint('SECONDS', time.perf_counter() - t0)\n"
    code = "import time\n" + body
    proc = subprocess.run([python, "-c", code], cwd=ROOT, env=child_env(), capture_output=True,
                          text=True, timeout=timeout_s)
    for line in proc.stdout.splitlines():
        if line.startswith("SECONDS "):
            return float(line.split()[1])
    raise RuntimeError(f"{measure} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``GET url`` answers HTTP 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - localhost
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def time_first_page(python: str, preset: str, timeout_s: float, poll_s: float = 0.1,
                    app: Path = ROOT / "app.py") -> float:
    """Start ``app`` (``--preset P --host 127.0.0.1 --port <free>``); seconds until ``/`` answers
    HTTP 200, from the process start. Stops the process afterwards. RuntimeError when it exits
    first, TimeoutError after ``timeout_s``."""
    port = common.free_port()
    url = f"http://127.0.0.1:{port}/"
    log = Path(tempfile.gettempdir()) / f"bench_cold_start_app_{os.getpid()}_{port}.log"
    with open(log, "w", encoding="utf-8") as sink:
        t0 = time.perf_counter()
        proc = subprocess.Popen([python, str(app), "--preset", preset, "--host",
                                 "127.0.0.1", "--port", str(port)], cwd=ROOT, env=child_env(),
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while True:
                if http_ok(url):
                    seconds = time.perf_counter() - t0
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"{app.name} exited with {proc.returncode} before serving: "
                                       f"{log.read_text(encoding='utf-8')[-500:]}")
                if time.perf_counter() - t0 > timeout_s:
                    raise TimeoutError(f"{app.name} did not serve {url} within {timeout_s:.0f} s")
                time.sleep(poll_s)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    log.unlink(missing_ok=True)
    return seconds


def measure(name: str, python: str, preset: str, timeout_s: float,
            app: Path = ROOT / "app.py") -> float:
    """Seconds of one ``name`` measure (see the module docstring)."""
    if name == "first_page":
        return time_first_page(python, preset, timeout_s, app=app)
    return time_snippet(name, python, preset, timeout_s)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``--repeat`` rounds, rotating the order of the measures each round."""
    measures = common.parse_choices(args.only, MEASURES, "--only") if args.only else list(MEASURES)
    import torch

    results = common.Results(bench="cold_start", machine=common.machine_info(torch.device("cpu")),
                             settings={"preset": args.preset, "repeat": args.repeat,
                                       "timeout_s": args.timeout, "python": args.python,
                                       "app": str(args.app)})
    seconds: dict[str, list[float]] = {m: [] for m in measures}
    errors: dict[str, str] = {}
    for round_ in range(args.repeat):
        shift = round_ % len(measures)
        for name in measures[shift:] + measures[:shift]:
            if name in errors:
                continue
            try:
                value = measure(name, args.python, args.preset, args.timeout, Path(args.app))
            except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            seconds[name].append(value)
            print(f"round {round_ + 1}: {name} {value:.3f} s", flush=True)
    for name in measures:
        values = seconds[name]
        if values:
            results.add(measure=name, status="ok", median_s=statistics.median(values),
                        min_s=min(values), max_s=max(values), first_s=values[0],
                        runs=len(values), all_s=values)
        else:
            results.add(measure=name, status=f"error: {errors.get(name, 'no run')}"[:300])
    if args.json:
        common.write_json(args.json, results.as_dict())
        print(f"wrote {args.json}")
    print(common.format_table(results.rows, ("measure", "status", "median_s", "min_s", "max_s",
                                             "first_s", "runs")))
    return results.as_dict()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_cold_start", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny", help="preset app.py serves (default tiny)")
    p.add_argument("--repeat", type=int, default=1, help="rounds (measures alternate between rounds)")
    p.add_argument("--only", default=None, help=f"comma list of {', '.join(MEASURES)}")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per measure")
    p.add_argument("--python", default=sys.executable, help="interpreter to start")
    p.add_argument("--app", default=str(ROOT / "app.py"), help="the app script (default app.py)")
    p.add_argument("--json", default=None, help="write results here")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if all(r["status"] == "ok" for r in result["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
