"""The engine's import graph has no cycle, and needs no imports inside functions to hide one.

Read from the source with ``ast``: the nodes are the modules of ``offline_sync/``
(not its subpackages: ``rest_framework/`` sits on top of the engine), an edge is
an import that runs when the module is imported (at its top level, in a class
body, under an ``if``), not one inside a function.
"""

import ast
from pathlib import Path

import offline_sync

PACKAGE = Path(offline_sync.__file__).parent
MODULES = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}

# Imports inside functions that app loading needs, not a cycle: AppConfig.ready()
# imports checks.py, which imports the models, and Django imports models only
# after every app's apps.py.
DEFERRED = {("apps", "checks")}


def _targets(node):
    """The ``offline_sync`` modules an ``import`` statement names."""
    if isinstance(node, ast.Import):
        dotted = [alias.name.split(".") for alias in node.names]
        return {parts[1] for parts in dotted if parts[0] == "offline_sync" and len(parts) > 1} & MODULES
    if node.level == 0:
        parts = (node.module or "").split(".")
        if parts[0] != "offline_sync":
            return set()
        parts = parts[1:]
    elif node.level == 1:
        parts = node.module.split(".") if node.module else []
    else:
        return set()
    if parts:
        return {parts[0]} & MODULES
    return {alias.name for alias in node.names} & MODULES  # from . import x, y


def _imports(tree):
    """``(module-level targets, targets imported inside functions)`` of one module's tree."""
    now, deferred = set(), set()

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (deferred if in_function else now).update(_targets(child))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                continue  # never runs
            else:
                visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return now, deferred


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_graph():
    """``({module: modules it imports when imported}, {(module, module it imports in a function)})``."""
    graph, deferred = {}, set()
    for name in sorted(MODULES):
        now, later = _imports(ast.parse((PACKAGE / f"{name}.py").read_text()))
        graph[name] = now - {name}
        deferred |= {(name, target) for target in later}
    return graph, deferred


def find_cycle(graph):
    """A cycle of ``graph`` as a list of modules (first == last), or None."""
    state = {}  # module -> "open" while on the path, "done" after
    path = []

    def walk(module):
        state[module] = "open"
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state:
                cycle = walk(target)
                if cycle:
                    return cycle
        state[module] = "done"
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = walk(module)
            if cycle:
                return cycle
    return None


def test_the_engine_import_graph_has_no_cycle():
    graph, _ = import_graph()
    assert {"models", "tombstones", "bulk", "registry"} <= graph.keys()  # the parser sees the engine
    assert "tombstones" in graph["models"]  # and its edges
    cycle = find_cycle(graph)
    assert cycle is None, (
        f"offline_sync imports in a cycle: {' -> '.join(cycle)}. Move what both modules need "
        "into a module below them (options.py, tables.py) instead of importing inside a function."
    )


def test_no_import_inside_a_function_hides_a_cycle():
    _, deferred = import_graph()
    assert deferred <= DEFERRED, (
        f"imports inside functions: {sorted(deferred - DEFERRED)}. Import at the top of the module; "
        "if that makes a cycle, move what both modules need below them."
    )


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
