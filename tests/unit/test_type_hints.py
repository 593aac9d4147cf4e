"""The public functions of the core, the rules and the rollup say what they take and give (issue #12)."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("core", "segmenter/rules", "segmenter/rollup")


def unannotated():
    """(file, function) of each public function or public method without full annotations."""
    missing = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                    functions = [(node, False)]
                elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    functions = [
                        (item, True)
                        for item in node.body
                        if isinstance(item, ast.FunctionDef) and not item.name.startswith("_")
                    ]
                else:
                    continue
                for function, method in functions:
                    args = function.args
                    params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
                    static = any(getattr(d, "id", None) == "staticmethod" for d in function.decorator_list)
                    if method and params and not static:
                        params = params[1:]
                    params += [extra for extra in (args.vararg, args.kwarg) if extra]
                    if function.returns is None or any(param.annotation is None for param in params):
                        missing.append(f"{path.relative_to(ROOT)}:{function.lineno} {function.name}")
    return missing


def test_every_public_function_of_the_core_rules_and_rollup_is_annotated():
    assert unannotated() == []


def test_the_check_finds_what_it_looks_for():
    assert len(list((ROOT / "core").glob("*.py"))) > 10
