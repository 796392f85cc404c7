"""The floors of the package: the import contracts of ``pyproject.toml`` and no borrowed private names.

``[tool.importlinter]`` states the layers (run/cli over studies over presentation and disclosure over
ingestion over parsing over io), no import cycle between the modules of a package, and private modules
imported from their own package only; import-linter (grimp) reads every import, those inside functions
too, so a cycle hidden in a function still breaks a contract. A module that uses another module's
``_name`` depends on what that module keeps free to change: the shared piece is made public (or moved
down) instead.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cyberobs_lib"
PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

#: Known imports of another module's private names, each (importing module, imported module, name): none
#: left; an entry would be a debt to pay by making the name public.
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()


def module_name(path: Path) -> str:
    """``cyberobs_lib/a/b.py`` -> ``cyberobs_lib.a.b``; a package's ``__init__.py`` -> the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(source: str, importer: str, is_package: bool = False) -> list[tuple[str, str, int]]:
    """``(imported module, name, line)`` of each ``from cyberobs_lib.x import _name`` in ``source`` that
    takes another module's private name.

    A package's own private submodule (``from cyberobs_lib.disclosure import _tables`` inside
    ``cyberobs_lib.disclosure``) is not a private name of another module: it is allowed.

    >>> private_imports("from cyberobs_lib.io import _BLOCK, read_csv", "cyberobs_lib.scale.csv_stream")
    [('cyberobs_lib.io', '_BLOCK', 1)]
    >>> private_imports("from cyberobs_lib.disclosure import _tables", "cyberobs_lib.disclosure.check")
    []
    """
    package = importer if is_package else importer.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:  # relative: resolved against the importing module's package
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.module else base
        else:
            module = node.module or ""
        if module != "cyberobs_lib" and not module.startswith("cyberobs_lib."):
            continue
        for alias in node.names:
            if not is_private(alias.name):
                continue
            submodule = f"{module}.{alias.name}"
            own_submodule = (PACKAGE.parent / Path(*submodule.split("."))).with_suffix(".py").is_file() or (
                PACKAGE.parent / Path(*submodule.split(".")) / "__init__.py"
            ).is_file()
            if own_submodule and (importer == module or importer.startswith(module + ".")):
                continue
            found.append((module, alias.name, node.lineno))
    return found


def lint_imports(config: Path, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``lint-imports`` on the contracts of ``config``, run from ``cwd``."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(config)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_import_contracts_are_kept():
    """``lint-imports`` on the contracts of pyproject.toml: layers, no cycle, private modules."""
    result = lint_imports(PYPROJECT, ROOT)
    assert result.returncode == 0, f"an import contract is broken:\n{result.stdout}\n{result.stderr}"
    assert "0 broken" in result.stdout


def test_a_cycle_hidden_in_a_function_breaks_the_contract(tmp_path):
    """The acyclic contract sees an import made inside a function (the way the cycles used to hide)."""
    package = tmp_path / "floors_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def late():\n    from floors_probe.high import top\n\n    return top\n")
    (package / "high.py").write_text("from floors_probe.low import late\n\n\ndef top():\n    return late\n")
    config = tmp_path / "probe.toml"
    config.write_text(
        textwrap.dedent(
            """
            [tool.importlinter]
            root_package = "floors_probe"

            [[tool.importlinter.contracts]]
            name = "acyclic"
            type = "acyclic_siblings"
            ancestors = ["floors_probe"]
            """
        )
    )
    result = lint_imports(config, tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": ""})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout


def layer_modules() -> list[str]:
    """Every module named by the layers contract (its containers prefixed; optional ones unwrapped)."""
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    names = [n.strip().strip("()") for layer in layers["layers"] for n in layer.replace(":", "|").split("|")]
    return [f"{container}.{name}" for container in layers["containers"] for name in names]


def test_every_module_has_a_floor():
    """A new module is placed in the layers (a package split across floors lists its modules)."""
    floors = layer_modules()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if path.name == "__init__.py" and not any(f.startswith(name + ".") or f == name for f in floors):
            missing.append(name)
        elif path.name != "__init__.py" and not any(name == f or name.startswith(f + ".") for f in floors):
            missing.append(name)
    assert not missing, f"modules in no layer of [tool.importlinter]: {missing}"


def test_no_module_imports_another_modules_private_names():
    found = set()
    where = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        source = path.read_text(encoding="utf-8")
        for module, name, line in private_imports(source, importer, is_package=path.name == "__init__.py"):
            found.add((importer, module, name))
            where[(importer, module, name)] = f"{path.relative_to(ROOT)}:{line}: from {module} import {name}"
    new = sorted(where[k] for k in found - KNOWN_PRIVATE_IMPORTS)
    assert not new, "imports of another module's private names:\n" + "\n".join(new)


@pytest.mark.parametrize(
    ("source", "importer", "expected"),
    [
        ("from cyberobs_lib.checks import _open", "cyberobs_lib.rows", [("cyberobs_lib.checks", "_open", 1)]),
        ("from cyberobs_lib.stats import _tidy", "cyberobs_lib.studies.cohorts", [("cyberobs_lib.stats", "_tidy", 1)]),
        ("from cyberobs_lib.stats import _tidy", "cyberobs_lib.stats.groups", []),
        ("from ._tidy import _helper", "cyberobs_lib.stats.groups", [("cyberobs_lib.stats._tidy", "_helper", 1)]),
        ("def f():\n    from cyberobs_lib.io import _BLOCK", "cyberobs_lib.plots", [("cyberobs_lib.io", "_BLOCK", 2)]),
        ("from cyberobs_lib.io import __version__, read_csv", "cyberobs_lib.cli", []),
    ],
)  # fmt: skip
def test_private_imports_finds_borrowed_names(source, importer, expected):
    assert private_imports(source, importer) == expected


def test_notebooks_define_no_function_or_class():
    """The notebooks are recipes over the library: a function or class defined in a cell is logic no test
    and no other notebook can reach; it belongs in cyberobs_lib."""
    import json

    found = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for k, cell in enumerate(cells):
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            tree = ast.parse(
                "\n".join(line for line in source.splitlines() if not line.startswith(("%", "!")))
            )
            defined = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
            found += [f"{path.name} cell {k}: {name}" for name in defined]
    assert found == []


#: Modules whose imports of the package's own modules are deferred into functions on purpose: the command
#: line answers ``--version`` and ``--help`` without importing pandas and the studies.
DEFERRED_IMPORTS_ALLOWED = {"cyberobs_lib.cli"}
#: Known deferred imports still to move to the top, each (module, imported module): none left.
KNOWN_DEFERRED_IMPORTS: set[tuple[str, str]] = set()


def deferred_imports(source: str) -> list[tuple[str, int]]:
    """``(imported module, line)`` of each import of a ``cyberobs_lib`` module made inside a function.

    >>> deferred_imports("from cyberobs_lib import io\\ndef f():\\n    from cyberobs_lib.stats import wilson")
    [('cyberobs_lib.stats', 3)]
    >>> deferred_imports("def f():\\n    import pandas as pd\\n    import cyberobs_lib.io")
    [('cyberobs_lib.io', 3)]
    """
    found = []
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and not node.level:
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            found += [
                (m, node.lineno) for m in modules if m == "cyberobs_lib" or m.startswith("cyberobs_lib.")
            ]
    return sorted(set(found), key=lambda x: x[1])


def test_the_package_imports_its_own_modules_at_the_top():
    """A module's header says which floors it stands on: an import of the package's own modules hidden in a
    function hides a dependency from the reader (import-linter still sees it), so only the command line,
    whose start-up time depends on it, defers them."""
    found, where = set(), {}
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        if importer in DEFERRED_IMPORTS_ALLOWED:
            continue
        for module, line in deferred_imports(path.read_text(encoding="utf-8")):
            found.add((importer, module))
            where.setdefault((importer, module), f"{path.relative_to(ROOT)}:{line}: {module}")
    new = sorted(where[k] for k in found - KNOWN_DEFERRED_IMPORTS)
    assert not new, "imports of the package's own modules inside functions:\n" + "\n".join(new)
    paid = sorted(f"{a} -> {b}" for a, b in KNOWN_DEFERRED_IMPORTS - found)
    assert not paid, (
        "deferred imports moved to the top: drop them from KNOWN_DEFERRED_IMPORTS:\n" + "\n".join(paid)
    )
