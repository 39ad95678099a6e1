"""The package's shape, read from its source (ast): imports go one way with no circle (README "How it works"),
no class is longer than 150 lines and no module longer than 300."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "hooks" / "llmexec"
MAX_CLASS_LINES = 150
MAX_MODULE_LINES = 300  # DESIGN.md, "Style": modules of about 300 lines at most

# README "How it works": adapters -> engine -> present -> resolve -> plan -> core (and vocabulary, errors); the
# worker imports only core and endpoint (which imports only errors). A group may import itself and what is listed.
BOTTOM = {"vocabulary", "errors", "llmexec"}  # llmexec/__init__.py: the schema version, no imports
ALLOWED: dict[str, set[str]] = {
    "vocabulary": set(),
    "errors": set(),
    "core": BOTTOM,
    "plan": {"core"} | BOTTOM,
    "resolve": {"plan", "core"} | BOTTOM,
    "present": {"resolve", "plan", "core"} | BOTTOM,
    "engine": {"present", "resolve", "plan", "core"} | BOTTOM,
    # the top: entry points; `python -m llmexec models` loads a preset in its own process, hence the worker
    "adapters": {"engine", "present", "resolve", "plan", "core", "worker"} | BOTTOM,
    "__main__": {"adapters"},
    "llmexec": set(),
    "endpoint": {"errors"},
    "worker": {"core", "endpoint"} | BOTTOM,
}


def module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def imports(found: dict[str, Path]) -> dict[str, set[str]]:
    """Each module's imports of package modules, function-level imports included (a lazy import is still an arrow)."""
    edges: dict[str, set[str]] = {}
    for name, path in found.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.split(".")[0] == "llmexec"}
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                if target.split(".")[0] != "llmexec":
                    continue
                for alias in node.names:  # `from . import x` imports the module x
                    targets.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in found else target)
        edges[name] = {t for t in targets if t in found and t != name}
    return edges


def group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every circle, each once, as the path that closes it."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def walk(node: str, path: list[str]) -> None:
        for target in sorted(edges.get(node, ())):
            if target in path:
                loop = path[path.index(target) :] + [target]
                if frozenset(loop) not in seen:
                    seen.add(frozenset(loop))
                    found.append(loop)
            elif target > path[0]:  # each circle is found from its smallest module
                walk(target, path + [target])

    for start in sorted(edges):
        walk(start, [start])
    return found


def upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} -> {target}"
        for source, targets in edges.items()
        for target in targets
        if group(target) != group(source) and group(target) not in ALLOWED[group(source)]
    )


def class_lengths(found: dict[str, Path]) -> dict[str, int]:
    lengths = {}
    for name, path in found.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                lengths[f"{name}.{node.name}"] = (node.end_lineno or node.lineno) - node.lineno + 1
    return lengths


def test_every_group_has_a_rule() -> None:
    assert {group(m) for m in modules()} <= set(ALLOWED)


def test_no_import_circle() -> None:
    assert cycles(imports(modules())) == []


def test_imports_follow_the_layer_order() -> None:
    assert upward(imports(modules())) == []


def test_no_class_over_150_lines() -> None:
    long = {name: n for name, n in class_lengths(modules()).items() if n > MAX_CLASS_LINES}
    assert long == {}


def module_lengths(found: dict[str, Path]) -> dict[str, int]:
    return {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in found.items()}


def test_no_module_over_300_lines() -> None:
    long = {name: n for name, n in module_lengths(modules()).items() if n > MAX_MODULE_LINES}
    assert long == {}


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    """The checks themselves, on a package made to break each rule: a circle, an upward arrow, a long class and a
    long module."""
    package = tmp_path / "llmexec"
    for folder in ("core", "resolve", "present", "worker"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "worker" / "a.py").write_text("def f():\n    from .b import x\n")
    (package / "worker" / "b.py").write_text("from . import a\nx = 1\n")
    (package / "resolve" / "r.py").write_text("from ..present import report\n")
    (package / "present" / "report.py").write_text("class Long:\n" + "    x = 1\n" * 150)
    found = modules(package)
    edges = imports(found)
    assert cycles(edges) == [["llmexec.worker.a", "llmexec.worker.b", "llmexec.worker.a"]]
    assert upward(edges) == ["llmexec.resolve.r -> llmexec.present.report"]
    assert class_lengths(found) == {"llmexec.present.report.Long": 151}
    assert {n: k for n, k in module_lengths(found).items() if k > MAX_MODULE_LINES} == {}
    (package / "present" / "report.py").write_text("x = 1\n" * 301)
    assert {n: k for n, k in module_lengths(found).items() if k > MAX_MODULE_LINES} == {"llmexec.present.report": 301}


def unnamed_in_readme(found: dict[str, Path], readme: str) -> list[str]:
    """Modules the README's "How it works" map does not name (by file name, e.g. `deferred.py`)."""
    start = readme.index("## How it works")
    section = readme[start : readme.index("\n## ", start + 1)]
    return sorted(name for name, path in found.items() if path.name != "__init__.py" and path.name not in section)


def test_the_readme_map_names_every_module() -> None:
    """README "How it works" is the reader's map of the package: a module added or renamed must appear there."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert unnamed_in_readme(modules(), readme) == []
    # the check itself: a map without one module's name is caught
    assert unnamed_in_readme(modules(), readme.replace("deferred.py", "deferred")) == ["llmexec.resolve.deferred"]
