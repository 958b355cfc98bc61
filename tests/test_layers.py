"""The layers import one way: dags -> night -> extract; devkit only from tests, demos and
benchmarks; and no import cycle between the project's modules.

Every `import` and `from ... import` counts, at module level or inside a function (a lazy
import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

from night import REPO_ROOT

# Rank of each layer: a module may import its own layer or one of a lower rank.
LAYERS = {"dags": 3, "night": 2, "extract": 1}
# May import anything; only tests, demos and benchmarks import it.
DEV_PACKAGE = "devkit"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Absolute module names `path` imports (relative imports resolved against `name`)."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from pkg import mod` imports the module pkg.mod when there is one.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def project_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports, for dags/, night/, extract/ and devkit/."""
    files = {
        module_name(path, root): path
        for top in [*LAYERS, DEV_PACKAGE]
        if (root / top).is_dir()
        for path in sorted((root / top).rglob("*.py"))
    }
    return {
        name: {dep for dep in imports_of(path, name) if dep in files and dep != name}
        for name, path in files.items()
    }


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Each import that goes up a layer, or into the dev package from product code."""
    bad = []
    for module, deps in sorted(graph.items()):
        top = module.split(".")[0]
        if top == DEV_PACKAGE:
            continue
        for dep in sorted(deps):
            dep_top = dep.split(".")[0]
            if dep_top == DEV_PACKAGE:
                bad.append(f"{module} imports {dep}: product code never imports {DEV_PACKAGE}")
            elif LAYERS[dep_top] > LAYERS[top]:
                bad.append(f"{module} imports {dep}: {top} is below {dep_top}")
    return bad


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_imports_go_one_way_from_dags_to_night_to_extract():
    assert layer_violations(project_graph(REPO_ROOT)) == []


def test_no_module_imports_itself_through_a_cycle():
    assert import_cycles(project_graph(REPO_ROOT)) == []


def test_the_checks_catch_an_upward_import_a_dev_import_and_a_cycle(tmp_path):
    # GIVEN a tree where extract imports night (lazily), night imports devkit, and two
    # extract modules import each other
    files = {
        "extract/__init__.py": "",
        "extract/warehouse.py": "from extract.formats import parse\n",
        "extract/formats.py": "def f():\n    from extract import warehouse\n",
        "extract/sources/__init__.py": "def g():\n    from night.config import load\n",
        "night/__init__.py": "",
        "night/config.py": "from . import tasks\n",
        "night/tasks.py": "import devkit.sample_data\n",
        "devkit/__init__.py": "",
        "devkit/sample_data.py": "from night import REPO_ROOT\n",
        "dags/nightly.py": "from night.tasks import run\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    # WHEN the project's checks read it
    graph = project_graph(tmp_path)

    # THEN each offence is named, and only those
    assert layer_violations(graph) == [
        "extract.sources imports night.config: extract is below night",
        "night.tasks imports devkit.sample_data: product code never imports devkit",
    ]
    assert import_cycles(graph) == [["extract.formats", "extract.warehouse"]]
    assert graph["night.config"] == {"night", "night.tasks"}  # the relative import resolved
