"""The suite keeps its layers (CONTRIBUTING.md): every test file lives in tests/unit, tests/integration, tests/e2e or
tests/reliability, whose folder gives it its marker; a unit test asks for no database or server, and an integration
test starts no process, server or browser."""

import ast
import configparser

from tests.conftest import LAYERS, TESTS, layer_of

ROOT = TESTS.parent
#: Fixtures that open a database or start a server: an integration test's (or a slower layer's), never a unit test's.
NOT_UNIT = {
    "template_url",
    "blank_database_url",
    "database_url",
    "engine",
    "app",
    "client",
    "runner",
    "site",
    "receiver",
    "live_collector",
}
#: What starts a process, gunicorn or a browser: end-to-end (or reliability), never integration.
NOT_INTEGRATION = ("subprocess", "Popen", "live_collector", "LiveCollector", "chromium", "playwright")


def python_test_files():
    return sorted(
        path
        for pattern in ("test_*.py", "*_test.py")
        for path in TESTS.rglob(pattern)
        if "node_modules" not in path.parts and "__pycache__" not in path.parts
    )


def test_every_test_file_lives_in_a_layer_folder():
    files = python_test_files()
    assert len(files) > 50
    outside = [str(path.relative_to(ROOT)) for path in files if layer_of(path) is None]
    assert not outside, f"move these into one of tests/{{{','.join(LAYERS)}}}: {outside}"


def test_every_folder_of_tests_is_a_package():
    # Several layers hold a file of the same name (test_cli.py): pytest tells them apart by their package.
    folders = {path.parent for path in python_test_files()}
    for folder in folders:
        while folder != TESTS:
            assert (folder / "__init__.py").is_file(), f"{folder.relative_to(ROOT)} has no __init__.py"
            folder = folder.parent


def test_the_layer_markers_are_registered_in_setup_cfg():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = [line for line in config["tool:pytest"]["markers"].splitlines() if line.strip()]
    assert [line.split(":", 1)[0].strip() for line in lines] == list(LAYERS)


def fixtures_asked(tree):
    """{test function name: the fixtures it asks for, with those of the module's own fixtures it uses}."""
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    own = {
        node.name: {arg.arg for arg in node.args.args} for node in functions if node.name not in names_of_tests(tree)
    }
    asked = {}
    for name in names_of_tests(tree):
        [node] = [node for node in functions if node.name == name]
        found, todo = set(), [arg.arg for arg in node.args.args]
        while todo:
            fixture = todo.pop()
            if fixture not in found:
                found.add(fixture)
                todo.extend(own.get(fixture, ()))
        asked[name] = found
    return asked


def names_of_tests(tree):
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}


def test_unit_tests_ask_for_no_database_or_server():
    wrong = {}
    for path in python_test_files():
        if layer_of(path) == "unit":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for name, fixtures in fixtures_asked(tree).items():
                if fixtures & NOT_UNIT:
                    wrong[f"{path.relative_to(ROOT)}::{name}"] = sorted(fixtures & NOT_UNIT)
    assert not wrong, f"these belong in tests/integration (or a slower layer): {wrong}"


def test_integration_tests_start_no_process_server_or_browser():
    wrong = {
        str(path.relative_to(ROOT)): [word for word in NOT_INTEGRATION if word in path.read_text(encoding="utf-8")]
        for path in python_test_files()
        if layer_of(path) == "integration"
    }
    wrong = {path: words for path, words in wrong.items() if words}
    assert not wrong, f"these belong in tests/e2e: {wrong}"
