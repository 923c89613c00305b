"""The architecture, checked: each layer imports only the layers below it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "aiostreams"

#: module → what it must never import (directly): sans-IO knows no I/O; the
#: transport knows no eventstreams models or SDK.
FORBIDDEN = {
    "_framing.py": {"aiohttp", "anyio", "asyncio", "._stream", "._typed", ".models", ".sdk"},
    "_typed.py": {"aiohttp", "anyio", "asyncio", "._stream", ".models", ".sdk"},
    "_events.py": {"aiohttp", "anyio", "asyncio"},
    "_encoding.py": {"aiohttp", "anyio", "asyncio"},
    "_session.py": {".models", ".sdk"},
    "_request.py": {".models", ".sdk"},
    "_stream.py": {".models", ".sdk"},
    "_connect.py": {".models", ".sdk"},
    "_fanin.py": {".models", ".sdk", "aiohttp"},
}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            dots = "." * node.level
            module = node.module or ""
            names.add(dots + module.split(".")[0] if dots else module.split(".")[0])
    return names


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(module: str) -> None:
    found = imported_modules(PACKAGE / module) & FORBIDDEN[module]
    assert not found, f"aiostreams/{module} imports {sorted(found)}"


def test_the_sans_io_api_imports_without_aiohttp() -> None:
    code = (
        "import sys, aiostreams\n"
        "aiostreams.SSEDecoder().feed(b'data: x\\n\\n')\n"
        "aiostreams.EventSchema\n"
        "assert 'aiohttp' not in sys.modules and 'anyio' not in sys.modules, 'eager I/O import'\n"
        "aiostreams.SDK\n"
        "assert 'aiohttp' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_only_the_distributed_package_imports_ray() -> None:
    distributed = PACKAGE / "distributed"
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if distributed not in path.parents and "ray" in imported_modules(path)
    ]
    assert not offenders, f"only aiostreams/distributed may import Ray; also: {offenders}"
    assert "ray" in imported_modules(distributed / "__init__.py")  # the check does see it


def test_checkpoints_import_no_io() -> None:
    found = imported_modules(PACKAGE / "_checkpoint.py") & {"aiohttp", "anyio", "asyncio", "ray"}
    assert not found, f"aiostreams/_checkpoint.py imports {sorted(found)}"
