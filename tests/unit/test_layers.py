"""The house keeps its layers (docs/architecture.md, "Layers").

Walks the imports of every module of the core package, integration/ and plugins/ with `ast`
(module level and inside functions alike: an import inside a function only hides a cycle, it
does not remove it) and fails, naming the modules, when:
  - modules import each other in a loop;
  - a core stage imports a later one (ORDER below: data flows one way);
  - an adapter (integration/) imports anything of Slotguard but the shared words (domain),
    the settings (config), the intake's normalizer and note helpers, and private files
    (ADAPTERS_MAY): never planning, the store's ledger, the engine, the CLI or a feature;
  - a policy (plugins/) imports anything of Slotguard but the policy kit, or an adapter;
  - the kit gathers anything but the policies' words (KIT_MAY);
  - the core imports a built-in policy module;
  - a core module is over 500 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 500

def _modules() -> dict[str, Path]:
    found = {}
    for top in ("slotguard", "integration", "plugins"):
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules `name` imports, wherever in the file the import stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            named.add(module)
            named.update(f"{module}.{alias.name}" for alias in node.names)
    resolved = set()
    for full in named:
        parts = full.split(".")
        while parts and ".".join(parts) not in MODULES:
            parts.pop()
        if parts and ".".join(parts) != name:
            resolved.add(".".join(parts))
    return resolved


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_no_module_imports_itself_through_others():
    assert _cycles(GRAPH) == []


def test_the_walk_sees_imports_inside_functions(tmp_path):
    """A lazy import hides a cycle at run time, not from this test."""
    module = tmp_path / "lazy.py"
    module.write_text("def later():\n    from slotguard.run.engine import Engine\n    from . import wiring\n")
    # `from . import wiring` runs the package first: slotguard.run (its __init__) is imported too.
    assert _imports("slotguard.run.lazy", module) == {"slotguard.run", "slotguard.run.engine", "slotguard.run.wiring"}


def test_the_cycle_finder_finds_a_loop():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# -- the rules -----------------------------------------------------------------------------

CORE = "slotguard"
# The core's stages, lowest first, each with what it may import besides itself and the
# lower stages it lists (data flows one way: a stage never imports one above it).
ORDER = ["domain", "config", "policies", "intake", "store", "planning", "mail", "payments",
         "collections", "practitioner", "privacy", "reports", "inbox", "features", "run", "what_if", "cli"]
# Adapters may use the shared words, the settings and the intake's text helpers, nothing above.
ADAPTERS_MAY = {"domain", "config", "intake", "store.private_files"}
# What a policy may import of Slotguard: the kit.
POLICIES_MAY = {"kit"}


# The policy kit (slotguard/kit.py) is the policies' side of the house: it may gather only the
# shared words, the settings and the plugin host.
KIT_MAY = {"domain", "config", "policies"}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if parts[0] == CORE and len(parts) > 1 else ""


def _breaks(graph: dict[str, set[str]]) -> list[str]:
    found = []
    builtin = {name for name in MODULES if name.startswith("plugins.")}
    for name, imported in sorted(graph.items()):
        for other in sorted(imported):
            if name.startswith(f"{CORE}.") and _stage(name) in ORDER:
                if other in builtin:
                    found.append(f"core {name} imports the built-in policy {other}")
                here, there = _stage(name), _stage(other)
                if there and there in ORDER and ORDER.index(there) > ORDER.index(here):
                    found.append(f"{name} ({here}) imports {other} ({there}), a later stage")
            elif name == f"{CORE}.kit" and _stage(other) not in KIT_MAY and other.startswith(f"{CORE}."):
                found.append(f"the kit imports {other}: it gathers only {', '.join(sorted(KIT_MAY))}")
            elif name.startswith("integration."):
                inside = other.removeprefix(f"{CORE}.")
                if other.startswith(f"{CORE}.") and not any(inside == may or inside.startswith(f"{may}.") for may in ADAPTERS_MAY):
                    found.append(f"adapter {name} imports {other}")
                if other.startswith("plugins."):
                    found.append(f"adapter {name} imports the policy {other}")
            elif name.startswith("plugins."):
                inside = other.removeprefix(f"{CORE}.")
                if other.startswith(f"{CORE}.") and inside not in POLICIES_MAY:
                    found.append(f"policy {name} imports {other}: policies import only slotguard.kit")
                if other.startswith("integration"):
                    found.append(f"policy {name} imports the adapter {other}")
    return found


def test_data_flows_one_way_adapters_and_policies_keep_to_their_side():
    assert _breaks(GRAPH) == []


def test_each_kind_of_break_is_named():
    broken = {
        "integration.stripe_webhooks": {"slotguard.store.ledger"},
        "plugins.no_show": {"slotguard.planning.planner", "slotguard.kit"},
        "slotguard.intake.normalize": {"slotguard.run.engine"},
        "slotguard.practitioner.digest": {"plugins.no_show"},
        "slotguard.kit": {"slotguard.store.ledger"},
    }
    assert _breaks(broken) == [
        "adapter integration.stripe_webhooks imports slotguard.store.ledger",
        "policy plugins.no_show imports slotguard.planning.planner: policies import only slotguard.kit",
        "slotguard.intake.normalize (intake) imports slotguard.run.engine (run), a later stage",
        "the kit imports slotguard.store.ledger: it gathers only config, domain, policies",
        "core slotguard.practitioner.digest imports the built-in policy plugins.no_show",
    ]


def test_no_core_module_is_over_500_lines():
    long = {name: sum(1 for _ in path.open(encoding="utf-8")) for name, path in MODULES.items() if name.startswith(CORE)}
    assert {name: lines for name, lines in long.items() if lines > MAX_LINES} == {}


def test_every_core_module_belongs_to_a_stage():
    stray = [name for name in MODULES if name.startswith(f"{CORE}.") and _stage(name) not in ORDER and name != f"{CORE}.kit"]
    assert stray == []
