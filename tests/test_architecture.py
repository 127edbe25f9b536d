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


def test_the_contract_catches_an_upward_import(tmp_path):
    copy = _copy_tree(tmp_path)
    files = copy / "core" / "files.py"
    files.write_text(files.read_text() + "\nimport session.studio  # upward: core -> session\n")
    result = _lint(copy)
    assert result.returncode != 0
    assert "core is not allowed to import session" in result.stdout


def test_the_contract_catches_a_circle_inside_a_folder(tmp_path):
    copy = _copy_tree(tmp_path)
    regions = copy / "pipelines" / "regions.py"
    regions.write_text(regions.read_text() + "\nimport pipelines.regional  # regional imports regions\n")
    result = _lint(copy)
    assert result.returncode != 0
    assert "No cycles are allowed in pipelines" in result.stdout


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
