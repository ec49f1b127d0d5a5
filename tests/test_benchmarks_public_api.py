"""The benchmark jobs use recbole-basrec's and RecBole's public API only.

Read with ``ast``: a job may not read or write an attribute named ``_x`` (one leading underscore;
dunders such as ``__code__`` are Python's protocol), name one in ``getattr``/``setattr``/
``hasattr``/``delattr``, or import one from ``recbole`` or ``recbole_basrec``; nor patch the
libraries: assign to an attribute of a module or class imported from them, or ``setattr`` a name
it computes. Allowed: ``self._x`` and ``cls._x`` inside a class the job defines itself, and
``module._x`` of a ``benchmarks`` module.
"""
import ast
import glob
import os

from helpers import ROOT


_LIBRARIES = ("recbole", "recbole_basrec")


def _private(name):
    return name.startswith("_") and not name.startswith("__")


class _PrivateUses(ast.NodeVisitor):
    def __init__(self):
        self.found, self.classes, self.own_modules, self.library = [], 0, set(), set()

    def _flag(self, node, what):
        self.found.append(f"line {node.lineno}: {what}")

    def visit_Import(self, node):
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            if alias.name.startswith("benchmarks"):
                self.own_modules.add(bound)
            elif alias.name.split(".")[0] in _LIBRARIES:
                self.library.add(bound)

    def visit_ImportFrom(self, node):
        module = node.module or ""
        for alias in node.names:
            if module.startswith("benchmarks"):
                self.own_modules.add(alias.asname or alias.name)
            elif module.split(".")[0] in _LIBRARIES:
                self.library.add(alias.asname or alias.name)
                if _private(alias.name):
                    self._flag(node, f"from {module} import {alias.name}")

    def _check_patch(self, target):
        base = target
        while isinstance(base, ast.Attribute):
            base = base.value
        if isinstance(target, ast.Attribute) and isinstance(base, ast.Name) and base.id in self.library:
            self._flag(target, f"patches {ast.unparse(target)}")

    def visit_Assign(self, node):
        for target in node.targets:
            self._check_patch(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._check_patch(node.target)
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        self.classes += 1
        self.generic_visit(node)
        self.classes -= 1

    def visit_Attribute(self, node):
        if _private(node.attr):
            receiver = node.value.id if isinstance(node.value, ast.Name) else None
            own = (receiver in ("self", "cls") and self.classes) or receiver in self.own_modules
            if not own:
                self._flag(node, f"{ast.unparse(node)}")
        self.generic_visit(node)

    def visit_Call(self, node):
        if (isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str) and _private(node.args[1].value)):
            self._flag(node, f"{node.func.id}(..., {node.args[1].value!r})")
        elif (isinstance(node.func, ast.Name) and node.func.id == "setattr" and len(node.args) >= 2
              and not isinstance(node.args[1], ast.Constant)):
            self._flag(node, f"setattr(..., {ast.unparse(node.args[1])}, ...)")
        self.generic_visit(node)


def private_uses(source):
    visitor = _PrivateUses()
    visitor.visit(ast.parse(source))
    return visitor.found


def test_no_benchmark_job_reaches_into_a_private_attribute():
    found = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "benchmarks", "*.py"))):
        with open(path, encoding="utf-8") as f:
            uses = private_uses(f.read())
        if uses:
            found[os.path.relpath(path, ROOT)] = uses
    assert found == {}


def test_the_rule_catches_what_the_jobs_did_before_and_allows_their_own_helpers():
    # what scale.py, speed.py, gpu_check.py and load_stages.py did before they used the public API
    before = (
        "trainer._history = trainer._eval_history(run.valid_data._dataset)\n"
        "_, scores, _, _ = trainer._full_sort_batch_eval(batched)\n"
        "sequences = train_data._dataset.basrec_train_sequences\n"
        "setattr(cls, '_load_data', wrapped)\n"
        "from recbole_basrec.trainer.trainer import _refuse_compiled\n"
        "import recbole_basrec.quick_start.quick_start as qs\n"
        "qs.create_dataset = timed('create_dataset', qs.create_dataset)\n"
        "setattr(cls, name, timed(name, getattr(cls, name)))\n"
    )
    assert len(private_uses(before)) == 9
    own = (
        "from benchmarks import common\n"
        "class Sampler:\n"
        "    def __init__(self):\n"
        "        self._peak = 0\n"
        "    def read(self):\n"
        "        return self._peak + common._proc_status_mib('VmRSS')\n"
        "code = frame.f_code.__code__\n"
        "trainer.enable_amp = True\n"  # a public attribute of a trainer the job built
    )
    assert private_uses(own) == []
    assert private_uses("def f(self):\n    return self._x\n") == ["line 2: self._x"]  # not a class of the job's
