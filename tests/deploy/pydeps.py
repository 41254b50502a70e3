"""Which PyPI distributions a service's image needs: the third-party modules its code imports
(following imports into ``shared/``), mapped to distributions, plus their dependency closure
from the installed metadata."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

from shared.settings import DatabaseSettings, KafkaSettings

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"shared", "services", "ripples"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by one file (relative imports are not used here)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def third_party_imports(service: str) -> set[str]:
    """Top-level third-party modules reached from ``services/<service>/`` (tests excluded)."""
    todo = [p for p in (ROOT / "services" / service).rglob("*.py")]
    seen: set[Path] = set()
    third: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imports(path):
            top = module.split(".")[0]
            if top in FIRST_PARTY:
                target = _module_file(module)
                if target is not None:
                    todo.append(target)
                    # a package's __init__ runs on import of any submodule
                    parts = module.split(".")
                    for i in range(1, len(parts)):
                        parent = _module_file(".".join(parts[:i]))
                        if parent is not None:
                            todo.append(parent)
            elif top not in sys.stdlib_module_names:
                third.add(top)
    return third


def distributions_of(modules: set[str]) -> set[str]:
    mapping = metadata.packages_distributions()
    dists: set[str] = set()
    for module in modules:
        if module not in mapping:
            raise LookupError(f"no installed distribution provides module {module!r}")
        dists.update(canonical(d) for d in mapping[module])
    return dists


def requires(dist: str) -> set[str]:
    """Runtime dependencies of an installed distribution (no extras) on this platform."""
    environment = {k: str(v) for k, v in default_environment().items()} | {"extra": ""}
    out: set[str] = set()
    for line in metadata.requires(dist) or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            out.add(canonical(requirement.name))
    return out


def closure(dists: set[str]) -> set[str]:
    out: set[str] = set()
    todo = list(dists)
    while todo:
        dist = todo.pop()
        if dist in out:
            continue
        out.add(dist)
        todo.extend(requires(dist) - out)
    return out


def read_pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements/constraints file, by canonical name."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not version.strip():
            raise ValueError(f"{path.name}: {raw!r} is not pinned with ==")
        pins[canonical(name.strip())] = version.strip()
    return pins


def settings_fields(prefix: str) -> set[str] | None:
    """Names of the settings read under an env prefix (``KAFKA_``, ``DATABASE_``,
    ``<SERVICE>_``); None when that service is not in this checkout."""
    classes = {"KAFKA_": KafkaSettings, "DATABASE_": DatabaseSettings}
    if prefix in classes:
        return {f.name.upper() for f in dataclasses.fields(classes[prefix])}
    name = prefix.rstrip("_").lower()
    try:
        module = importlib.import_module(f"services.{name}.settings")
    except ModuleNotFoundError:
        return None
    (cls,) = [
        c
        for c in vars(module).values()
        if isinstance(c, type)
        and dataclasses.is_dataclass(c)
        and c.__module__ == module.__name__
        and c.__name__.endswith("Settings")
    ]
    return {f.name.upper() for f in dataclasses.fields(cls)}
