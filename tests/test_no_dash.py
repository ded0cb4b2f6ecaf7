import pkgutil
import subprocess
import sys
from pathlib import Path

import core


def test_core_never_imports_dash():
    mods = [f"core.{m.name}" for m in pkgutil.iter_modules(core.__path__) if m.name != "__main__"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in mods) + "bad = [m for m in sys.modules if m == 'dash' or m.startswith('dash.') or m.startswith('dash_')]\nprint(bad)\nsys.exit(1 if bad else 0)\n"
    res = subprocess.run([sys.executable, "-c", code], cwd=Path(core.__file__).parent.parent, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(mods) >= 10


def test_import_core_is_light():
    code = "import sys, core\nprint(sorted(m for m in ('torch', 'sklearn', 'dash') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], cwd=Path(core.__file__).parent.parent, capture_output=True, text=True)
    assert res.stdout.strip() == "[]", res.stderr
