"""The layout's rules, read from the source: who may import what, and no import cycles.

Every import that runs counts, wherever it is written: inside a function too, so a cycle
cannot hide behind a late import. Imports under ``if TYPE_CHECKING:`` never run; they count
for who may import what, but not for cycles (an annotation may name the class that owns it).
"""

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("advice", "bench", "cogs", "db", "sandbox", "tests")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, Path]:
    found = {"bot": ROOT / "bot.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[module_name(path)] = path
    return found


MODULES = sources()


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines inside `if TYPE_CHECKING:` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(name: str, *, runtime_only: bool = False) -> Iterator[tuple[str, int]]:
    """(module imported, line) for every import in `name`, relative ones resolved; with
    `runtime_only`, not those under `if TYPE_CHECKING:`."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    here = name if is_package(name) else name.rpartition(".")[0]
    skipped = type_checking_lines(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # `from pkg import mod` imports the submodule when there is one.
                submodule = f"{base}.{alias.name}"
                yield (submodule if submodule in MODULES else base), node.lineno


def ours(imported: str) -> str | None:
    """The module of ours that an import names (the nearest one that exists), or None."""
    parts = imported.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def private_part(module: str) -> int | None:
    """Index of the first underscore part of a dotted name (not dunder), or None."""
    for index, part in enumerate(module.split(".")):
        if part.startswith("_") and not part.startswith("__"):
            return index
    return None


def test_no_module_imports_another_packages_private_module() -> None:
    offences = []
    for name in MODULES:
        for imported, line in imports_of(name):
            index = private_part(imported)
            if index is None or ours(imported) is None:
                continue
            # A private module may be imported from inside the package that holds it.
            owner = ".".join(imported.split(".")[:index])
            if not (name == owner or name.startswith(owner + ".")) or not owner:
                offences.append(f"{MODULES[name].relative_to(ROOT)}:{line} imports {imported}")
    assert offences == []


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        for imported, _ in imports_of(name, runtime_only=True):
            target = ours(imported)
            if target is not None and target != name:
                edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_anywhere() -> None:
    assert cycles(graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        # The content and its pure rules: no Discord, no SQL, nothing above them.
        ("advice", {"discord", "sqlalchemy", "db", "cogs", "sandbox", "bot"}),
        ("db", {"discord", "cogs", "sandbox", "bot"}),
        # The emulator imports nothing of ours.
        ("sandbox", {"advice", "db", "cogs", "bot"}),
        ("cogs", {"sandbox", "bench", "bot"}),
    ],
)
def test_dependencies_point_one_way(layer: str, forbidden: set[str]) -> None:
    offences = [
        f"{name} imports {imported}"
        for name in MODULES
        if name == layer or name.startswith(layer + ".")
        for imported, _ in imports_of(name)
        if imported.split(".")[0] in forbidden
    ]
    assert offences == []


def test_features_use_only_the_framework_and_their_own_modules() -> None:
    """A feature imports cogs.core and its own package, never another feature."""
    offences = []
    for name in MODULES:
        if not name.startswith("cogs.") or name.startswith("cogs.core"):
            continue
        feature = name.split(".")[1]
        for imported, line in imports_of(name):
            parts = imported.split(".")
            if parts[0] == "cogs" and len(parts) > 1 and parts[1] not in ("core", feature):
                offences.append(f"{name}:{line} imports {imported}")
    assert offences == []


def test_no_feature_routes_by_hand() -> None:
    """Buttons and forms are declared with @button/@form, never added to the router."""
    offences = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "cogs").rglob("*.py")
        if "core" not in path.relative_to(ROOT / "cogs").parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ".router." in line or "tree.add_command" in line or "tree.remove_command" in line
    ]
    assert offences == []


def test_every_public_name_of_the_sandbox_loads() -> None:
    import sandbox

    for name in sandbox.__all__:
        assert getattr(sandbox, name) is not None, name


def test_a_bot_nobody_scrapes_loads_no_metrics_server() -> None:
    """Prometheus' client and aiohttp's server (about 4 MiB) are loaded only with METRICS_PORT
    (bot.counted_metrics); the bot and every feature import neither."""
    script = (
        "import importlib, sys, bot\n"
        "from cogs import EXTENSIONS\n"
        "for name in EXTENSIONS: importlib.import_module(name)\n"
        "print(sorted(m for m in ('prometheus_client', 'aiohttp.web') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
