"""The package's shape: pyproject's dependencies and requirements.txt in step, no import
cycle (between modules or between subpackages), no module importing another's private or
unexported name, no sys.path manipulation, the console command and the public API."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "audit_engine"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins(path: Path) -> dict[str, str]:
    """name -> exact version of a requirements file (following -r includes)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            out.update(_pins(path.parent / line[3:].strip()))
        elif line and not line.startswith("-"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{path.name}: {line} is not pinned exactly"
            out[req.name.lower()] = spec.version
    return out


@pytest.mark.parametrize(
    "extra,requirements",
    [
        (None, "requirements.txt"),
        ("scale", "requirements-scale.txt"),
        ("train", "requirements-train.txt"),
        ("dev", "requirements-dev.txt"),
    ],
)
def test_requirements_pin_exactly_what_the_package_depends_on(extra, requirements):
    project = PYPROJECT["project"]
    deps = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    pins = _pins(ROOT / requirements)
    runtime = {Requirement(d).name.lower() for d in project["dependencies"]}
    wanted = {Requirement(d).name.lower(): Requirement(d) for d in deps}
    for name, req in wanted.items():
        assert name in pins, f"{requirements} does not pin {name} ({req})"
        assert req.specifier.contains(pins[name]), (
            f"{requirements}: {name}=={pins[name]} is outside pyproject's {req}"
        )
    extra_pins = set(pins) - set(wanted) - (runtime if extra else set())
    if extra == "dev":
        extra_pins -= {
            Requirement(d).name.lower() for d in project["optional-dependencies"]["scale"]
        }
    assert not extra_pins, f"{requirements} pins what pyproject does not declare: {extra_pins}"


def _modules() -> dict[str, Path]:
    return {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in sorted(PKG.rglob("*.py"))
    }


def _imports(name: str, path: Path):
    """(line, imported module, names or None) of every import in the module, function-level
    ones included, TYPE_CHECKING blocks excluded."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for b in node.body for n in ast.walk(b)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            yield node.lineno, mod, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, None


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        for _, target, names in _imports(m, path):
            if target in mods:
                graph[m].add(target)
            for n in names or ():
                if f"{target}.{n}" in mods:  # from package import module
                    graph[m].add(f"{target}.{n}")
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (found := visit(m)):
                return found
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules():
    graph = _graph()
    # a package's __init__ importing its own modules is no cycle of the architecture
    graph = {
        m: {
            t for t in ts if not (m == t.rpartition(".")[0] and _modules()[m].name == "__init__.py")
        }
        for m, ts in graph.items()
    }
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PKG / parts[1]).is_dir()) else module


def test_no_import_cycle_between_subpackages():
    layers: dict[str, set[str]] = {}
    for m, targets in _graph().items():
        if m in ("audit_engine", "audit_engine.cli", "audit_engine.__main__"):
            continue  # the command line and the lazy public API sit above everything
        layers.setdefault(_layer(m), set()).update(
            _layer(t) for t in targets if _layer(t) != _layer(m)
        )
    assert _cycle(layers) is None, " -> ".join(_cycle(layers))


def _code_files() -> list[Path]:
    return [
        *PKG.rglob("*.py"),
        *(ROOT / "webui").rglob("*.py"),
        ROOT / "app.py",
        *(ROOT / "scripts").rglob("*.py"),
        *(ROOT / "bench").rglob("*.py"),
        *(ROOT / "research").rglob("*.py"),
    ]


def test_no_module_imports_another_modules_private_or_unexported_name():
    mods = _modules()
    bad = []
    for path in _code_files():
        rel = path.relative_to(ROOT)
        name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        for line, target, names in _imports(name, path):
            if target not in mods or names is None or target == "audit_engine":
                continue
            exported = getattr(importlib.import_module(target), "__all__", None)
            for n in names:
                if f"{target}.{n}" in mods:
                    continue  # a submodule
                if n.startswith("_") or exported is None or n not in exported:
                    bad.append(f"{rel}:{line} imports {n} from {target}")
    assert not bad, "\n".join(bad)


def test_nothing_edits_sys_path():
    found = [
        f"{p.relative_to(ROOT)}"
        for p in [*_code_files(), *(ROOT / "tests").rglob("*.py")]
        if p != Path(__file__) and re.search(r"sys\.path\.(insert|append)", p.read_text())
    ]
    assert not found, found


def test_every_module_declares_its_public_names():
    missing = [
        m
        for m, p in _modules().items()
        if p.name not in ("__init__.py", "__main__.py") and "__all__" not in p.read_text()
    ]
    assert not missing, missing


def test_the_public_api_is_importable_from_the_package():
    import audit_engine

    for name in audit_engine.__all__:
        obj = getattr(audit_engine, name)
        if name != "__version__":
            module = importlib.import_module(audit_engine._WHERE[name])
            assert name in module.__all__ and getattr(module, name) is obj
    with pytest.raises(AttributeError):
        audit_engine.no_such_name  # noqa: B018


def test_the_console_command_runs():
    exe = Path(sys.executable).parent / "privacy-audit"
    if not exe.exists():
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "audit" in out.stdout and "solve" in out.stdout
