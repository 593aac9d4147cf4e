"""The functional core imports no framework: rules and evaluation are pure."""

import ast
import os

import pytest

import segmenter

PURE = ("rules/definitions.py", "rules/meaning.py")
FORBIDDEN = ("sqlalchemy", "flask", "core", "collector", "marshmallow", "click")


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_framework(module):
    path = os.path.join(os.path.dirname(segmenter.__file__), module)
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & set(FORBIDDEN), imported
