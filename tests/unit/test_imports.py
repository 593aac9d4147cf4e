"""The import rule of the house (docs/architecture.md): `core` imports neither domain, `collector` never imports
`segmenter`, and no two modules import each other, directly or through others. Function-level imports count."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("core", "collector", "segmenter", "demo")
#: package -> the first-party packages it may import.
ALLOWED = {
    "core": {"core"},
    "collector": {"core", "collector"},
    "segmenter": {"core", "segmenter"},
    "demo": {"core", "collector", "segmenter", "demo"},
}


def module_files():
    """{dotted module name: path} of every first-party module."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = module_files()


def imports_of(name, path):
    """The first-party modules `name` imports anywhere in its file (`from a import b` counts as a.b when that
    is a module, else as a)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target.split(".")[0] in PACKAGES and target != name)
    return found


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def test_every_import_is_of_a_module_that_exists():
    assert {"core.app", "collector.tracking", "segmenter.rollup.job"} <= set(MODULES)
    missing = {(name, target) for name, targets in GRAPH.items() for target in targets if target not in MODULES}
    assert not missing


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_what_the_rule_allows(package):
    wrong = {
        (name, target)
        for name, targets in GRAPH.items()
        if name.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in ALLOWED[package]
    }
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}: {sorted(wrong)}"


def test_no_import_cycles():
    """Tarjan's strongly connected components: every component is one module."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"
