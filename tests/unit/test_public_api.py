"""The public surface: every public module keeps ``__all__``, every name in it exists,
every public name a module defines is in it, and every exported name is documented
(a docstring, and a mention in README.md or docs/)."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: The modules whose names are the public API (README: "Version policy").
PUBLIC_MODULES = [
    "aiostreams",
    "aiostreams.blocking",
    "aiostreams.distributed",
    "aiostreams.errors",
    "aiostreams.models",
    "aiostreams.models.errors",
    "aiostreams.models.operations",
    "aiostreams.models.shared",
    "aiostreams.otel",
    "aiostreams.sdk",
    "aiostreams.server",
    "aiostreams.testing",
]


def _docs_text() -> str:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_lists_existing_names_without_duplicates(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    missing = [attr for attr in exported if not hasattr(module, attr)]
    assert not missing, f"{name}.__all__ names what {name} does not have: {missing}"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_definition_is_exported(name: str) -> None:
    """A public class or function defined in the module itself is in ``__all__``."""
    module = importlib.import_module(name)
    defined = [
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == name
    ]
    unexported = sorted(set(defined) - set(module.__all__))
    assert not unexported, f"{name} defines public names missing from __all__: {unexported}"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_exported_name_is_documented(name: str) -> None:
    module = importlib.import_module(name)
    docs = _docs_text()
    undocumented = []
    for attr in module.__all__:
        value = getattr(module, attr)
        if inspect.ismodule(value):
            continue
        has_docstring = not (inspect.isclass(value) or inspect.isfunction(value)) or bool(
            inspect.getdoc(value)
        )
        mentioned = re.search(rf"\b{re.escape(attr)}\b", docs) is not None
        if not (has_docstring and mentioned):
            undocumented.append(attr)
    assert not undocumented, (
        f"{name}: exported names without a docstring or a mention in README.md/docs: {undocumented}"
    )
