"""Hostile files through ``python -m pipelines generate``: time and peak memory of each refusal.

    python -m bench.bench_hostile [--out results.json]

Each case runs in a fresh process that calls the CLI's ``main`` and reports its exit status, wall
seconds and peak resident memory (``ru_maxrss``); the baseline case (a missing panels file, refused
at once) gives the interpreter's own peak, and every other case is reported as its growth over
that baseline in the same run. Targets (issue 15): the 5 GB zip bomb refused in under 2 s with
under 100 MB of growth; the 20,000-panel project, steps 10^12 and width 2^40 refused in one line.
The hostile files are made on the spot in a temporary folder (a few MB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

_RUNNER = """
import json, resource, sys, time
from pipelines.cli import main
started = time.perf_counter()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - started,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_cases(folder: Path) -> dict[str, list[str]]:
    """name -> CLI arguments, with the hostile files written into ``folder``."""
    from hostile import valid_project, zip_bomb

    panels = folder / "panels.json"
    panels.write_text(json.dumps([{"text": "A street.", "characters": []}]))
    many = folder / "many.json"
    many.write_text(json.dumps(valid_project(20_000)))
    deep = folder / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    out = ["--preset", "tiny", "--out", str(folder / "out")]
    return {
        "baseline (missing file)": ["generate", "--panels", str(folder / "missing.json"), *out],
        "zip bomb, 5 GiB of zeros": ["generate", "--project", str(zip_bomb(folder / "bomb.zip")), *out],
        "zip lying about its size": ["generate", "--project",
                                     str(zip_bomb(folder / "liar.zip", size=256 << 20, declared=100)), *out],
        "20,000-panel project": ["generate", "--project", str(many), *out],
        "nesting 100,000 deep": ["generate", "--panels", str(deep), *out],
        "steps 10^12": ["generate", "--panels", str(panels), "--steps", str(10**12), *out],
        "width 2^40": ["generate", "--panels", str(panels), "--width", str(2**40), *out],
    }


def run_case(args: list[str]) -> dict:
    """Run the CLI with ``args`` in a fresh process; its report plus the error line."""
    done = subprocess.run([sys.executable, "-c", _RUNNER, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    report["stderr_lines"] = len(errors)
    report["error"] = errors[0] if errors else ""
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        results = {name: run_case(case) for name, case in make_cases(Path(tmp)).items()}
    base = results["baseline (missing file)"]["peak_mb"]
    print(f"{'case':28} {'exit':>4} {'seconds':>8} {'peak MB':>8} {'growth MB':>9}  error line")
    for name, r in results.items():
        r["growth_mb"] = r["peak_mb"] - base
        print(f"{name:28} {r['code']:>4} {r['seconds']:>8.3f} {r['peak_mb']:>8.0f} "
              f"{r['growth_mb']:>9.1f}  {r['error'][:110]}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
