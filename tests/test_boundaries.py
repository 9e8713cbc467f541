"""The core stays free of Textual, so it runs (and is tested) without a screen.

Two checks that complement each other: the import contracts in pyproject.toml
(``[tool.importlinter]``, run by ``lint-imports``) read every module's imports,
lazy ones inside functions included, and also keep storage away from the server,
the tunnel and the UI; the subprocess test imports the core for real and sees
what actually ends up in ``sys.modules``, whatever the source looks like.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import tavus_monitor

ROOT = Path(__file__).resolve().parent.parent
CORE_MODULES = sorted(
    f"tavus_monitor.{info.name}"
    for info in pkgutil.iter_modules(tavus_monitor.__path__)
    if info.name not in {"tui", "__main__"}
)


def test_core_modules_exist() -> None:
    assert "tavus_monitor.events" in CORE_MODULES
    assert "tavus_monitor.server" in CORE_MODULES


def test_importing_the_core_does_not_import_textual(tmp_path: Path) -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}: importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(leaked))\n"
    )
    # Outside the checkout, so ``-c`` (which puts the working directory first) imports the
    # same package as the tests do.
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "", f"core imported {result.stdout.strip()}"


def test_the_import_contracts_hold() -> None:
    """``lint-imports`` (import-linter) keeps every contract in pyproject.toml."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.exists(), "import-linter is a test dependency: pip install -e '.[test]'"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
