"""The layering of docs/DESIGN.md, enforced by import-linter's contracts in setup.cfg.

`lint-imports` must pass on the tree, and must fail when one deliberately wrong import
is added to a temporary copy of it (so the contracts can fail at all).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ncsn_tf", "export", "export_format", "desktop")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the tree at `root` (its setup.cfg, its packages first on the path)."""
    executable = Path(sys.executable).parent / "lint-imports"
    command = [str(executable) if executable.exists() else shutil.which("lint-imports") or "lint-imports"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [*command, "--no-cache", "--no-logo"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_tree_keeps_every_contract():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout and "kept" in done.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """The packages' Python files and setup.cfg, copied."""
    root = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.npz", "*.png", "*.json"))
    shutil.copy(ROOT / "setup.cfg", root / "setup.cfg")
    return root


@pytest.mark.parametrize(
    "module, line, broken",
    [
        ("ncsn_tf/schedule.py", "import export.cli", "ncsn_tf imports neither export nor desktop"),
        ("desktop/masks.py", "from PySide6 import QtCore", "never import Qt"),
        ("export_format/manifest.py", "import tensorflow", "export_format imports none of"),
        ("desktop/imaging.py", "import export.runtime", "desktop imports export_format, never export or ncsn_tf"),
    ],
)
def test_one_wrong_import_breaks_its_contract(tree_copy, module, line, broken):
    path = tree_copy / module
    original = path.read_text()
    path.write_text(original + f"\n{line}  # deliberately wrong\n")
    try:
        done = lint_imports(tree_copy)
    finally:
        path.write_text(original)
    assert done.returncode != 0, done.stdout[-3000:]
    assert "BROKEN" in done.stdout and broken in done.stdout.replace("\n", " "), done.stdout[-3000:]
