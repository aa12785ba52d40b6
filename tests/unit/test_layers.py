"""Imports point one way: api -> services -> (dicom, orthanc, analysis, inference, ...) -> core and models.

Every module of the package is parsed (never imported) and each ``awesomme`` import it makes, at the top or inside
a function, is checked against the layers below. Packages of one layer may use each other, but never both ways.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "extensions" / "awesomme"

# From the top down; a module may import its own layer and those below it. The entry points (the ASGI app, the
# command, the processes it starts, demo seeding, migrations) sit at the top: they assemble everything.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("server", "cli", "runtime", "seeding", "monailabel_env", "migrations", "__main__"),
    ("api",),
    ("services",),
    ("dicom", "orthanc", "analysis", "inference", "intake", "training", "phantoms"),
    ("core", "models", "__init__"),
)
LAYER_OF = {unit: depth for depth, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    """The top-level package or module of ``awesomme.<unit>...``."""
    return module.split(".")[1] if "." in module else "__init__"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_unit(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def _imports(path: Path) -> set[str]:
    module = _module_name(path)
    return _imports_of(path.read_text(), module if path.name == "__init__.py" else module.rpartition(".")[0])


def _imports_of(source: str, package: str) -> set[str]:
    """The ``awesomme`` modules ``source`` imports (relative imports resolved against ``package``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "awesomme":  # ``from awesomme import services`` names a unit; ``__version__`` is the root's
                found |= {f"awesomme.{a.name}" if _is_unit(a.name) else "awesomme" for a in node.names}
            elif node.module is None:  # ``from . import cache``: modules of the package
                found |= {f"{base}.{alias.name}" for alias in node.names}
            else:
                found.add(base)
    return {name for name in found if name == "awesomme" or name.startswith("awesomme.")}


def _graph() -> dict[str, set[tuple[str, str]]]:
    """Each unit's imports of other units: (importing module, imported module)."""
    edges: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for imported in _imports(path):
            if _unit(imported) != _unit(module):
                edges[_unit(module)].add((module, imported))
    return edges


def test_every_unit_of_the_package_has_a_layer() -> None:
    units = {_unit(_module_name(path)) for path in PACKAGE.rglob("*.py")}
    assert units - set(LAYER_OF) == set()


def test_no_layer_imports_one_above_it() -> None:
    upward = [
        f"{module} imports {imported}"
        for unit, edges in _graph().items()
        for module, imported in sorted(edges)
        if LAYER_OF.get(_unit(imported), 0) < LAYER_OF[unit]
    ]
    assert upward == []


def test_units_of_one_layer_never_import_each_other_both_ways() -> None:
    graph = _graph()
    uses = {unit: {_unit(imported) for _, imported in edges} for unit, edges in graph.items()}
    both_ways = [
        f"{first} <-> {second}"
        for first, second in itertools.combinations(sorted(uses), 2)
        if second in uses[first] and first in uses[second]
    ]
    assert both_ways == []


@pytest.mark.parametrize(("lower", "upper"), [("analysis", "inference"), ("inference", "analysis")])
def test_analysis_and_inference_do_not_import_each_other(lower: str, upper: str) -> None:
    """One of the two may build on the other (the registry serves both kinds of model), not both on each other."""
    uses = {_unit(imported) for _, imported in _graph().get(lower, set())}
    reverse = {_unit(imported) for _, imported in _graph().get(upper, set())}
    assert not (upper in uses and lower in reverse)


def test_the_checker_finds_imports_anywhere_in_a_module() -> None:
    source = (
        "from awesomme import __version__, services\n"
        "from . import cache\n"
        "def late():\n"
        "    from ..services.scores import list_scores\n"
        "    import awesomme.api.deps\n"
    )
    assert _imports_of(source, "awesomme.orthanc") == {
        "awesomme",
        "awesomme.services",
        "awesomme.orthanc.cache",
        "awesomme.services.scores",
        "awesomme.api.deps",
    }
