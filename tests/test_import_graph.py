"""The import graph of the service's packages: no cycle, and the core never imports a domain.

Every `import` statement that runs counts, wherever it is written — at the top of a module or
inside a function — because a function-level import that closes a cycle is still a cycle: it
only moves the failure from start-up to the first call. Imports under `if TYPE_CHECKING:`
never run, so they make no cycle; they still count for the layering rule (the core names no
domain, not even for a type). An edge goes to the module named (`from loyalty import ledger`
names `loyalty.ledger`; `from loyalty.x import f` names `loyalty.x`), not to the packages above
it, which Python runs first but which import nothing of their own except the app factory's
wiring.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("loyalty", "referrals", "rewards", "connectors", "console")
CORE = "loyalty"
DOMAINS = ("referrals", "rewards", "connectors", "console")
# The app factory: the one place of the core that may name the domains (to wire them in).
WIRING = frozenset({"loyalty", "loyalty.wiring"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (never run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                skipped.update(id(inner) for inner in ast.walk(statement))
    return skipped


def import_graph(*, type_checking: bool = False) -> dict[str, dict[str, int]]:
    """module -> {module it imports: line of the first such import}, our packages only;
    with `type_checking`, the imports only type checkers see count too."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        tree = ast.parse(path.read_text(), str(path))
        skipped = set() if type_checking else _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if submodule in modules else base)
            for target in targets:
                if _ours(target) and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _describe(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    members = set(component)
    edges = [
        f"  {source} -> {target} (line {line})"
        for source in component
        for target, line in sorted(graph[source].items())
        if target in members
    ]
    return "\n".join([" <-> ".join(component), *edges])


def test_the_graph_sees_function_level_imports():
    """The check would be blind without this: `create_app` imports the routes in its body."""
    graph = import_graph()
    assert "loyalty.earning.routes" in graph["loyalty"]
    assert "referrals" in graph["loyalty.wiring"]


def test_cycle_detection_finds_a_cycle_through_a_function_level_import():
    graph = {"a": {"b": 1}, "b": {"c": 3}, "c": {"a": 9}, "d": {"a": 2}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n\n".join(_describe(graph, c) for c in found)


def test_the_core_never_imports_a_domain():
    graph = import_graph(type_checking=True)
    wrong = [
        f"{source} -> {target} (line {line})"
        for source, targets in sorted(graph.items())
        if source.split(".")[0] == CORE and source not in WIRING
        for target, line in sorted(targets.items())
        if target.split(".")[0] in DOMAINS
    ]
    assert not wrong, "the core imports a domain:\n" + "\n".join(wrong)
