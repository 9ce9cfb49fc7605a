"""DESIGN.md's layering: `incidents` is the bottom layer and never imports the apps above it."""

import ast
from pathlib import Path

from django.conf import settings

ABOVE_INCIDENTS = ("knowledge", "remediation", "notifications")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_incidents_never_imports_the_apps_above_it():
    root = Path(settings.BASE_DIR) / "incidents"
    offending = [
        f"{path.relative_to(root.parent)} imports {name}"
        for path in sorted(root.rglob("*.py"))
        if "migrations" not in path.parts
        for name in _imports(path)
        if name.split(".")[0] in ABOVE_INCIDENTS
    ]
    assert offending == []
