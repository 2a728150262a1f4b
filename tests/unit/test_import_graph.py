"""The import graph of docfs: no cycles, and the layering between backends and the vfs.

Every ``import``/``from … import`` of a docfs module counts, at module level or inside a
function (a late import only hides a cycle from Python, not from a reader). Imports under
``if TYPE_CHECKING:`` are left out: they never run, so they cannot make an import order fail,
and naming a type for the checker is not a dependency of the code's behaviour.
"""

from __future__ import annotations

import ast
from pathlib import Path

import docfs

PACKAGE = Path(docfs.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The docfs modules ``path`` imports (outside ``if TYPE_CHECKING:``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        # ``from docfs.vfs import content`` imports docfs.vfs.content; ``from docfs.x import
        # y`` where y is a name imports docfs.x: the longest known module wins
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                add(f"{source}.{alias.name}")
        for inner in ast.iter_child_nodes(node):
            visit(inner)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {name: imports_of(path, modules) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := walk(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_the_graph_sees_late_and_relative_imports() -> None:
    # the checker itself: a function-level import counts, a TYPE_CHECKING one does not
    graph = import_graph()
    assert "docfs.vfs.filesystem" in graph["docfs.daemon"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


#: imports allowed to close a cycle, with the reason; empty since issue 19 landed. An entry
#: must name an edge that exists (the test below fails otherwise), so none outlives its cycle
KNOWN_CYCLE_EDGES: set[tuple[str, str]] = set()


def test_no_import_cycle_in_docfs() -> None:
    graph = import_graph()
    for source, target in KNOWN_CYCLE_EDGES:
        graph[source].discard(target)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_known_cycle_edge_still_exists() -> None:
    graph = import_graph()
    gone = [edge for edge in KNOWN_CYCLE_EDGES if edge[1] not in graph.get(edge[0], ())]
    assert not gone, f"cycle edges gone (remove them from KNOWN_CYCLE_EDGES): {gone}"


#: all the vfs needs from outside itself: the backend protocol and neutral helpers (never a
#: backend's own module, the daemon, the CLI or the kernel side)
VFS_MAY_IMPORT = {
    "docfs.backends",
    "docfs.backends.base",
    "docfs.backends.traffic",
    "docfs.errors",
    "docfs.hashing",
    "docfs.retry",
}


def type_command_modules() -> set[str]:
    """The command-line side of the repository types (RSpace's sharing and import): the
    modules their descriptors name for extra commands and control requests. They are loaded
    by name, never by a backend, and may use the control channel like any command."""
    from docfs import registry

    specs = [c.register for t in registry.REGISTERED for c in t.commands]
    specs += [spec for t in registry.REGISTERED for spec in t.control_ops.values()]
    return {spec.partition(":")[0] for spec in specs}


def is_type_command_module(module: str) -> bool:
    return module in type_command_modules()


def test_the_type_command_modules_are_found() -> None:
    assert "docfs.backends.rspace.commands" in type_command_modules()


def test_backends_never_import_the_vfs_and_the_vfs_only_base_and_traffic() -> None:
    graph = import_graph()
    wrong = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if is_type_command_module(target) and not is_type_command_module(module):
                wrong.append(f"{module} -> {target} (commands are loaded by name only)")
            if is_type_command_module(module):
                continue
            if module.startswith("docfs.backends") and (
                target.startswith("docfs.vfs") or target in ("docfs.fuse_ops", "docfs.control")
            ):
                wrong.append(f"{module} -> {target}")
            if (
                module.startswith("docfs.vfs")
                and not target.startswith("docfs.vfs")
                and target not in VFS_MAY_IMPORT
            ):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "layering broken: " + ", ".join(wrong)


def test_fuse_ops_and_control_enter_the_vfs_only_through_filesystem() -> None:
    # the parts of the vfs (its write path, listings, extended attributes, inode table) are
    # the Filesystem's business: the kernel side and the control channel call its methods
    parts = {"writes", "listings", "xattrs", "inodes"}
    wrong = []
    for name in ("fuse_ops.py", "control.py"):
        for node in ast.walk(ast.parse((PACKAGE / name).read_text())):
            if not isinstance(node, ast.Attribute) or node.attr not in parts:
                continue
            holder = node.value
            held = holder.attr if isinstance(holder, ast.Attribute) else getattr(holder, "id", "")
            if held == "fs":
                wrong.append(f"{name}:{node.lineno} fs.{node.attr}")
    assert not wrong, "reaching past Filesystem: " + ", ".join(wrong)
