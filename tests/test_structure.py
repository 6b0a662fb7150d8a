"""The shape of the code: layers that depend downwards only, a pure core, no mixins, no cycles.

Everything here reads the source with :mod:`ast` (nothing is imported), so a
rule holds for imports inside functions and under ``TYPE_CHECKING`` too.
``docs/architecture.md`` describes the same rules in words.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "nbsocket"
PACKAGE = "nbsocket"

ENTRY_POINTS = {"__init__", "__main__", "api", "cli", "errors"}
"""The only modules allowed at the top level of the package."""

SUBPACKAGES = {"core", "runtime", "explore", "magics", "widgets", "demo", "service"}

FORBIDDEN_IN_CORE = {
    "asyncio",
    "threading",
    "socket",
    "ssl",
    "websockets",
    "ipywidgets",
    "IPython",
    "concurrent",
    "queue",
}
"""Third-party and standard modules that mean I/O, threads or a front end: the core uses none of them."""

LAYER_OF = {
    "errors": 0,
    "core": 0,
    "runtime": 1,
    "explore": 2,
    "magics": 3,
    "widgets": 3,
    "demo": 3,
    "service": 3,
    "api": 3,
    "cli": 3,
    "__init__": 3,
    "__main__": 3,
}
"""How high each part sits: a module may import from its own layer or lower ones only."""

FRONT_ENDS = ("api", "cli", "magics", "widgets", "demo", "explore", "service")
"""Parts that use the runtime through public names only."""


# --- reading the package --------------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "nbsocket.core.events"
    path: Path
    is_package: bool

    @property
    def part(self) -> str:
        """The first component under the package: ``core``, ``runtime``, ..., or a top-level module's name."""
        rest = self.name.split(".")[1:]
        return rest[0] if rest else "__init__"

    @property
    def tree(self) -> ast.Module:
        return _parse(self.path)


@cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@cache
def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
        parts = list(relative.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts)
        found[name] = Module(name, path, is_package)
    return found


def _resolve_from(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module name an ``from X import ...`` statement names."""
    if node.level == 0:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def _type_checking_only(tree: ast.Module) -> set[ast.AST]:
    """The import statements under ``if TYPE_CHECKING:`` (never run; they only feed type checkers)."""
    found: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                found.update(n for n in ast.walk(statement) if isinstance(n, ast.Import | ast.ImportFrom))
    return found


def imported_names(module: Module, *, type_checking: bool = True) -> Iterator[tuple[str, int]]:
    """Every module an import statement anywhere in ``module`` loads, inside functions too.

    Imports under ``if TYPE_CHECKING:`` count unless ``type_checking=False``.
    ``from pkg import name`` loads ``pkg.name`` when that is a module of the
    package, otherwise ``pkg`` itself.
    """
    known = modules()
    skipped = set() if type_checking else _type_checking_only(module.tree)
    for node in ast.walk(module.tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            source = _resolve_from(module, node)
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                yield (candidate if candidate in known else source), node.lineno


def internal_imports(module: Module, *, type_checking: bool = True) -> Iterator[tuple[str, int]]:
    known = modules()
    for name, line in imported_names(module, type_checking=type_checking):
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            while name not in known:  # "nbsocket.core.events.WsEvent" written as a module path
                name = name.rsplit(".", 1)[0]
            yield name, line


def import_graph(*, type_checking: bool = False) -> dict[str, set[str]]:
    """Which package module imports which when it runs (deferred imports in functions included)."""
    return {
        name: {target for target, _ in internal_imports(module, type_checking=type_checking) if target != name}
        for name, module in modules().items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or ``None`` when it is acyclic."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if colour.get(target, black) == grey:
                return [*stack[stack.index(target) :], target]
            if colour.get(target) == white:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return None

    for node in sorted(graph):
        if colour[node] == white:
            found = visit(node)
            if found:
                return found
    return None


def _where(module: Module, line: int) -> str:
    return f"{module.path.relative_to(PACKAGE_DIR.parent)}:{line}"


# --- the checks -------------------------------------------------------------------------------


def test_the_checks_see_the_whole_package() -> None:
    names = modules()
    assert "nbsocket.core.events" in names and "nbsocket.runtime.connection" in names
    assert len(names) > 60


def test_core_imports_no_io_threads_front_ends_or_higher_layers() -> None:
    problems = []
    for module in modules().values():
        if module.part != "core":
            continue
        for name, line in imported_names(module):
            top = name.split(".")[0]
            if top in FORBIDDEN_IN_CORE:
                problems.append(f"{_where(module, line)} imports {name}")
        for name, line in internal_imports(module):
            if LAYER_OF[Module(name, Path(), False).part] > 0:
                problems.append(f"{_where(module, line)} imports {name}")
    assert not problems, "the core must stay pure:\n" + "\n".join(problems)


WEBSOCKETS_DOOR = "nbsocket.runtime.transport"
"""The one package that imports ``websockets`` (the demo servers use its documented server API too)."""


def test_only_the_transport_imports_websockets() -> None:
    problems = []
    for module in modules().values():
        if module.name.startswith(WEBSOCKETS_DOOR) or module.part == "demo":
            continue
        for name, line in imported_names(module):
            if name.split(".")[0] == "websockets":
                problems.append(f"{_where(module, line)} imports {name}")
    assert not problems, f"only {WEBSOCKETS_DOOR} may import websockets:\n" + "\n".join(problems)


def test_runtime_layer_exists() -> None:
    assert (PACKAGE_DIR / "runtime" / "__init__.py").is_file()
    assert (PACKAGE_DIR / "runtime" / "connection.py").is_file()


def test_top_level_holds_only_entry_points() -> None:
    extra_modules = {p.stem for p in PACKAGE_DIR.glob("*.py")} - ENTRY_POINTS
    folders = {p.name for p in PACKAGE_DIR.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert not extra_modules, f"modules at the top level that belong in a layer: {sorted(extra_modules)}"
    assert folders <= SUBPACKAGES, f"unexpected packages: {sorted(folders - SUBPACKAGES)}"


def _project_classes() -> dict[str, ast.ClassDef]:
    classes: dict[str, ast.ClassDef] = {}
    for module in modules().values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, node)
    return classes


def _is_trivial(cls: ast.ClassDef) -> bool:
    """A class whose body declares nothing but a docstring, ``pass``, ``...`` or plain class attributes."""
    for statement in cls.body:
        if isinstance(statement, ast.Pass | ast.AnnAssign | ast.Assign):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue
        return False
    return True


def _base_name(base: ast.expr) -> str | None:
    if isinstance(base, ast.Name):
        return base.id
    if isinstance(base, ast.Attribute):
        return base.attr
    if isinstance(base, ast.Subscript):
        return _base_name(base.value)
    return None


def test_no_class_is_a_mixin() -> None:
    classes = _project_classes()
    problems = []
    for module in modules().values():
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.ClassDef):
                continue
            if node.name.endswith("Mixin"):
                problems.append(f"{_where(module, node.lineno)} class {node.name} is a mixin by name")
            project_bases = [name for name in map(_base_name, node.bases) if name in classes and not _is_trivial(classes[name])]
            if len(project_bases) >= 2:
                problems.append(f"{_where(module, node.lineno)} class {node.name} mixes {project_bases}")
    assert not problems, "compose parts instead of mixing classes:\n" + "\n".join(problems)


def _private_reads(module: Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        if not attr.startswith("_") or (attr.startswith("__") and attr.endswith("__")):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
            continue
        yield node.lineno, f"{ast.unparse(owner)}.{attr}"


def test_front_ends_touch_no_private_attribute_of_another_object() -> None:
    problems = [
        f"{_where(module, line)} uses {text}"
        for module in modules().values()
        if module.part in FRONT_ENDS
        for line, text in _private_reads(module)
    ]
    assert not problems, "front ends use public names only:\n" + "\n".join(problems)


def test_no_import_cycle_not_even_a_hidden_one() -> None:
    """Imports inside functions count (they run later), and so do imports for type checkers only: a cycle hidden
    under ``if TYPE_CHECKING:`` is still two modules that need each other."""
    cycle = find_cycle(import_graph(type_checking=True))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


RUNTIME_SURFACE = "nbsocket.runtime"
"""The runtime's public surface: the package's own namespace (``nbsocket/runtime/__init__.py``)."""


def test_front_ends_use_the_runtime_surface_only() -> None:
    """The API, magics, widgets, explorers, demo and command line import the runtime's surface, never its modules."""
    problems = []
    for module in modules().values():
        if module.part not in (*FRONT_ENDS, "__init__", "__main__"):
            continue
        for name, line in internal_imports(module):
            if name.startswith(RUNTIME_SURFACE + "."):
                problems.append(f"{_where(module, line)} imports {name}")
    assert not problems, f"front ends import from {RUNTIME_SURFACE} itself only:\n" + "\n".join(problems)


def test_connection_does_not_import_explore() -> None:
    module = modules()["nbsocket.runtime.connection"]
    explore = [name for name, _ in internal_imports(module) if name.startswith("nbsocket.explore")]
    assert not explore, f"runtime/connection.py imports {explore}"


def test_layers_depend_downwards_only() -> None:
    problems = []
    for module in modules().values():
        own = LAYER_OF[module.part]
        for name, line in internal_imports(module):
            target = modules()[name]
            if LAYER_OF[target.part] > own:
                problems.append(f"{_where(module, line)} ({module.part}) imports {name} ({target.part})")
    assert not problems, "layers depend downwards only:\n" + "\n".join(problems)


def _declares_all(tree: ast.Module) -> bool:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


def test_every_module_declares_all() -> None:
    missing = [str(m.path.relative_to(PACKAGE_DIR.parent)) for m in modules().values() if not _declares_all(m.tree)]
    assert not missing, f"modules without __all__: {missing}"


# --- the checks themselves fail when they should -------------------------------------------


def test_cycle_finder_finds_a_cycle_and_passes_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize(
    "source, expected",
    [
        ("self._x; cls._y; super()._z; x.__class__", []),
        ("conn._reset()", ["conn._reset"]),
        ("def f(m):\n    return m.server._stopped", ["m.server._stopped"]),
    ],
)
def test_private_attribute_check_catches_reaching_in(source: str, expected: list[str], tmp_path: Path) -> None:
    path = tmp_path / "front.py"
    path.write_text(source)
    assert [text for _, text in _private_reads(Module("nbsocket.widgets.front", path, False))] == expected


def test_import_reader_sees_imports_in_functions_and_type_checking(tmp_path: Path) -> None:
    path = tmp_path / "x.py"
    path.write_text(
        textwrap.dedent("""
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import asyncio
        def later():
            from ..runtime import loop
            from .. import errors
    """)
    )
    module = Module("nbsocket.core.x", path, False)
    found = {name for name, _ in imported_names(module)}
    assert {"asyncio", "nbsocket.runtime.loop", "nbsocket.errors"} <= found
    at_run_time = {name for name, _ in imported_names(module, type_checking=False)}
    assert "asyncio" not in at_run_time and "nbsocket.runtime.loop" in at_run_time


def test_mixin_check_tells_composition_from_mixing() -> None:
    trivial = ast.parse("class E(Exception):\n    '''doc'''").body[0]
    busy = ast.parse("class W:\n    def wait(self): ...").body[0]
    assert isinstance(trivial, ast.ClassDef) and isinstance(busy, ast.ClassDef)
    assert _is_trivial(trivial) and not _is_trivial(busy)


# --- import nbsocket stays light ----------------------------------------------------------------


def test_import_nbsocket_stays_light() -> None:
    """``import nbsocket`` loads no widgets, IPython, server side of websockets or protocol; pyarrow only if pandas does."""
    probe = textwrap.dedent("""
        import sys
        import pandas
        before = set(sys.modules)
        import nbsocket
        added = sorted(set(sys.modules) - before)
        print("\\n".join(added))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    added = result.stdout.split()
    heavy = (
        "ipywidgets",
        "IPython",
        "ipykernel",
        "traitlets",
        "pyarrow",
        "websockets.server",
        "websockets.asyncio.server",
        "nbsocket.core.protocols.socketio",
        "nbsocket.core.protocols.graphql",
        "nbsocket.core.protocols.jsonrpc",
        "nbsocket.core.protocols.stomp",
        "nbsocket.widgets",
        "nbsocket.magics",
        "nbsocket.demo",
        "nbsocket.runtime.observe.recording.parquet",
        "nbsocket.runtime.observe.recording.jetstream",
        "nbsocket.runtime.observe.recording.parts",
        "nbsocket.service",
        "nats",
        "fsspec",
        "prometheus_client",
    )
    loaded = [m for m in added if m.startswith(heavy)]
    assert "nbsocket" in added
    assert not loaded, f"import nbsocket loads {loaded}"


# --- one exception tree -----------------------------------------------------------------------------


def test_every_error_class_is_drawn_in_the_exception_tree() -> None:
    import nbsocket.errors as errors
    import nbsocket.widgets as widgets

    classes = [
        name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, errors.NbSocketError)
    ]
    assert len(classes) > 15
    missing = [name for name in classes if f" {name} " not in (errors.__doc__ or "").replace("\n", " ")]
    assert not missing, f"classes missing from the tree in errors.py's docstring: {missing}"
    assert widgets.InvalidMessageError is errors.InvalidMessageError


def test_no_bare_builtin_errors_raised_where_users_can_reach_them() -> None:
    """``raise ValueError(...)`` and friends only where the error is caught inside nbsocket (listed here)."""
    caught_inside = {
        "nbsocket/core/codecs.py": {"TypeError"},  # json.dumps' default hook; becomes EncodeError
        "nbsocket/runtime/dispatch/workers.py": {
            "RuntimeError"
        },  # Executor's "shut down" signal; the lane then runs the work inline
    }
    problems = []
    for module in modules().values():
        where = str(module.path.relative_to(PACKAGE_DIR.parent))
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                name = node.exc.func.id
                if name in ("ValueError", "TypeError", "RuntimeError", "KeyError") and name not in caught_inside.get(where, ()):
                    problems.append(f"{where}:{node.lineno} raises {name}")
    assert not problems, "raise nbsocket's own errors (see errors.py):\n" + "\n".join(problems)
