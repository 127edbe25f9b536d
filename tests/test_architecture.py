"""The house rules (docs/ARCHITECTURE.md): folders on floors, no circles, small classes.

``lint-imports`` checks the contracts in ``.importlinter``; these tests run it on the tree and on
a copy with one upward import and one circle added, so the check is shown to be able to fail.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ui", "session", "pipelines", "serving", "llm", "stableidentity", "identities",
            "models", "faces", "core", "configs")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(root / ".importlinter"), "--no-cache"],
                          cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def _copy_tree(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / ".importlinter", copy / ".importlinter")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.yaml", "*.png", "*.txt"))
    return copy


def test_every_import_runs_downward_and_no_folder_has_a_circle():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, line, message", [
    ("core/files.py", "import session.studio  # upward: core -> session",
     "core is not allowed to import session"),
    ("pipelines/regions.py", "import pipelines.regional  # regional imports regions: a circle",
     "No cycles are allowed in pipelines"),
], ids=["upward-import", "circle"])
def test_the_contract_catches(tmp_path, module, line, message):
    copy = _copy_tree(tmp_path)
    path = copy / module
    path.write_text(path.read_text() + f"\n{line}\n")
    result = _lint(copy)
    assert result.returncode != 0
    assert message in result.stdout


def _classes(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_class_is_over_400_lines(package):
    long = [(f"{path.relative_to(ROOT)}:{name}", lines)
            for path in (ROOT / package).rglob("*.py") for name, lines in _classes(path)
            if lines > 400]
    assert not long


def test_session_modules_stay_small_and_the_method_folder_holds_only_the_method():
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in (ROOT / "session").glob("*.py")}
    assert sizes and max(sizes.values()) <= 450, sizes
    method = sorted(p.name for p in (ROOT / "stableidentity").glob("*.py"))
    assert len(method) <= 14, method
    concerns = {"library", "jobs", "store", "photos", "face_detection", "zero_gpu", "similarity"}
    assert not concerns & {name.removesuffix(".py") for name in method}
