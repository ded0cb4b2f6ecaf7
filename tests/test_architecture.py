"""core/ is a library: it never imports Dash (checked statically, every import at any depth)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "core"
FORBIDDEN = ("dash", "dash_leaflet", "dash_extensions", "flask", "plotly")


def imported_modules(source: str) -> list[tuple[int, str]]:
    """Every module named by an import statement anywhere in ``source`` (functions included)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def _forbidden(name: str) -> bool:
    return name.split(".")[0] in FORBIDDEN


def test_no_module_in_core_imports_dash_at_any_depth():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 25
    bad = [
        f"{f.relative_to(CORE.parent)}:{line} imports {name}"
        for f in files
        for line, name in imported_modules(f.read_text(encoding="utf-8"))
        if _forbidden(name)
    ]
    assert bad == []


@pytest.mark.parametrize(
    "source",
    [
        "import dash\n",
        "def f():\n    from dash import html\n",
        "class A:\n    def g(self):\n        import dash_leaflet as dl\n",
        "import importlib\nimportlib.import_module('dash')\n",
    ],
)
def test_the_scan_finds_an_import_hidden_anywhere(source):
    assert any(_forbidden(name) for _, name in imported_modules(source))


def test_import_core_is_light():
    code = "import sys, core\nprint(sorted(m for m in ('torch', 'sklearn', 'dash') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], cwd=CORE.parent, capture_output=True, text=True)
    assert res.stdout.strip() == "[]", res.stderr
