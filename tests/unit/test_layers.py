"""The layer rules of DESIGN.md are enforced: a deliberately wrong import fails the check.

Each case copies the source tree, plants one forbidden import and runs import-linter on the
copy with the project's own contracts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_real_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(ROOT / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("core/_planted.py", "import httpx\n", "core imports only the standard library"),
        ("core/_planted.py", "import sfsync.spi.registry\n", "Layers"),
        ("spi/_planted.py", "import sfsync.stores.sqlite\n", "Layers"),
        ("stores/_planted.py", "import sfsync.app\n", "Layers"),
        ("emulator/_planted.py", "import sfsync.core.events\n", "The emulator imports nothing"),
        ("stores/_planted.py", "import sfsync.testing.fakes\n", "Nothing under src imports"),
        ("connectors/a/__init__.py", "import sfsync.connectors.b\n", "Connectors never import"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    tmp_path: Path, module: str, planted: str, contract: str
) -> None:
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "src" / "sfsync", src / "sfsync", ignore=shutil.ignore_patterns("__pycache__")
    )
    for sibling in ("a", "b"):
        pkg = src / "sfsync" / "connectors" / sibling
        pkg.mkdir(exist_ok=True)
        (pkg / "__init__.py").touch()
    (src / "sfsync" / module).write_text(planted)
    result = _lint(src, tmp_path)
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(contract in line for line in broken), result.stdout
