"""The layering DESIGN.md sets out, checked on the sources with `ast`: which package may import which.

Every rule is a table row, so a new rule is one line. Imports inside functions count as much as
top-level ones: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("ray", "vllm", "deepspeed")  # the cluster and engine stack

# (folder or file under the repository root, imports it must not make, why)
RULES = [
    (
        "envs",
        ("droidrl.rollout", "droidrl.trainer", "droidrl.cluster", "droidrl.cli", "droidrl.models"),
        "envs is the bottom",
    ),
    ("envs", HEAVY, "envs runs without the training stack"),
    ("algorithms", (*HEAVY, "droidrl.rollout.engines", "droidrl.cluster", "droidrl.trainer"), "pure algorithm code"),
    ("curricula", (*HEAVY, "droidrl.rollout.engines", "droidrl.cluster", "droidrl.trainer"), "task sampling only"),
    ("curricula", ("droidrl.rollout.collector", "droidrl.rollout.agent"), "curricula read the trajectory contract"),
    ("rollout", ("droidrl.cluster", "droidrl.trainer", "droidrl.cli"), "commands wire rollout to the cluster"),
    ("models", ("droidrl.rollout", "droidrl.trainer", "droidrl.cluster", *HEAVY), "models are leaf components"),
    ("checkpoints", ("droidrl.cluster", "droidrl.cli", *HEAVY), "checkpoints know files, not actors"),
    ("trainer/loop.py", ("droidrl.cluster", *HEAVY), "the loop receives its collaborators already started"),
]


def python_files(where: str, root: Path = ROOT) -> list[Path]:
    path = root / where
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """Every module `path` imports (absolute names; relative imports resolved against the package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(("droidrl", *path.relative_to(root).parent.parts))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def violations(where: str, banned: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """`path:line imports module` for each import under `where` of a module in (or below) `banned`."""
    out: dict[tuple[str, int], str] = {}
    for path in python_files(where, root):
        for line, module in imported_modules(path, root):
            if any(module == b or module.startswith(b + ".") for b in banned):
                out.setdefault((str(path.relative_to(root)), line), module)  # `from a import b`: a, not a.b
    return [f"{path}:{line} imports {module}" for (path, line), module in sorted(out.items())]


@pytest.mark.parametrize(("where", "banned", "why"), RULES, ids=[f"{r[0]}-{i}" for i, r in enumerate(RULES)])
def test_import_direction(where: str, banned: tuple[str, ...], why: str) -> None:
    assert (ROOT / where).exists(), f"{where} is gone: update the layering table"
    assert violations(where, banned) == [], why


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The rule table must be able to fail: a lazy upward import inside a function is found."""
    (tmp_path / "envs" / "sim").mkdir(parents=True)
    source = "def f():\n    from droidrl.cluster.launch import start_pool\n    import ray\n    from .. import env\n"
    (tmp_path / "envs" / "sim" / "probe.py").write_text(source)
    assert violations("envs", ("droidrl.cluster",), tmp_path) == ["envs/sim/probe.py:2 imports droidrl.cluster.launch"]
    assert violations("envs", HEAVY, tmp_path) == ["envs/sim/probe.py:3 imports ray"]
    assert violations("envs", ("droidrl.envs.env",), tmp_path) == ["envs/sim/probe.py:4 imports droidrl.envs.env"]


def ray_actor_starts(path: Path) -> list[int]:
    """Lines that start Ray actors or a Ray cluster: ray.remote(...), @ray.remote, ray.init(...)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "ray"
            and node.attr in ("remote", "init")
        ):
            lines.append(node.lineno)
    return lines


def test_only_cluster_starts_actors() -> None:
    outside = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(ROOT.rglob("*.py"))
        if path.relative_to(ROOT).parts[0] not in (".venv", "cluster", "tests", "benchmarks")
        for line in ray_actor_starts(path)
    ]
    assert outside == []


def test_the_loop_takes_typed_collaborators() -> None:
    """trainer/loop.py: no hasattr, no isinstance on the learner / engine / pool, none of them typed Any."""
    tree = ast.parse((ROOT / "trainer" / "loop.py").read_text())
    collaborators = {"learner", "engine", "pool"}
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "isinstance"):
            first = node.args[0] if node.args else None
            if node.func.id == "hasattr" or (isinstance(first, ast.Name) and first.id in collaborators):
                problems.append(f"line {node.lineno}: {node.func.id}")
        untyped = isinstance(node, ast.arg) and (node.annotation is None or ast.unparse(node.annotation) == "Any")
        if untyped and node.arg in collaborators:
            problems.append(f"line {node.lineno}: {node.arg} typed {ast.unparse(node.annotation or node)}")
    assert problems == []
