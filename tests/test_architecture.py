"""The package's imports, read with ``ast``: no cycle, and no layer imports one above it."""
import ast
import os

from helpers import ROOT

PACKAGE = "recbole_basrec"
#: Lowest first. A module may import its own layer's modules and those of lower layers only.
LAYERS = [
    ["console"],
    ["config", "distributed"],
    ["data"],
    ["model"],
    ["trainer"],
    ["utils"],
    ["quick_start", "tune", "distributed.launch"],
    ["cli", "__init__", "compat"],
]


def _layer(module):
    """The layer of the longest name of LAYERS that ``module`` is or lies in (``distributed.launch``
    before ``distributed``)."""
    inner = module.split(".", 1)[1] if "." in module else "__init__"
    found = [(len(name), rank) for rank, names in enumerate(LAYERS) for name in names
             if inner == name or inner.startswith(name + ".")]
    if found:
        return max(found)[1]
    raise AssertionError(f"{module} is in no layer; add it to LAYERS")


def _modules():
    found = {}
    base = os.path.join(ROOT, PACKAGE)
    for folder, _, files in os.walk(base):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                found[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return found


def _imports(path, modules):
    """Modules of ours that ``path`` imports, at module level or inside functions."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name.startswith(PACKAGE):
                targets.add(name)
    return targets


def _graph():
    modules = _modules()
    return {module: _imports(path, modules) - {module} for module, path in modules.items()}


def _package_of(module):
    return module if module.count(".") < 2 else module.rsplit(".", module.count(".") - 1)[0]


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        # importing the root for its __version__ (a run's record) is no layering
        for target in targets if target != PACKAGE and _layer(target) > _layer(module)
    ]
    assert not upward, upward


def test_the_imports_have_no_cycle():
    graph = _graph()
    # a package's __init__ re-exports its modules: count edges between modules only
    edges = {m: {t for t in ts if graph.get(t) is not None and t != _package_of(m) and not m.startswith(t + ".")}
             for m, ts in graph.items()}
    state, cycle = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycle.append(path[path.index(nxt):] + [nxt] if nxt in path else path + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycle, cycle


def test_the_check_sees_a_planted_upward_import(tmp_path, monkeypatch):
    """The checker itself: an import from config up to trainer is caught."""
    modules = {"recbole_basrec.config.x": str(tmp_path / "x.py"), "recbole_basrec.trainer.trainer": ""}
    (tmp_path / "x.py").write_text("def f():\n    from recbole_basrec.trainer.trainer import BASRecTrainer\n")
    targets = _imports(modules["recbole_basrec.config.x"], modules)
    assert targets == {"recbole_basrec.trainer.trainer"}
    assert _layer("recbole_basrec.trainer.trainer") > _layer("recbole_basrec.config.x")


def test_the_package_root_imports_only_compat():
    """``import recbole_basrec`` stays light: compat registers its hooks and imports the rest lazily."""
    with open(os.path.join(ROOT, PACKAGE, "__init__.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    at_import = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [(node.module, [a.name for a in node.names]) for node in at_import] == [(PACKAGE, ["compat"])]
