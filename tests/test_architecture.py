"""The layout as a contract: imports point one way, weights are read and written in one layer,
training code stays in short named steps. An AST scan of ``src/nucfm``, function-level imports
included (a lazy import is still a dependency)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "nucfm"

# Lower layers never import higher ones; a module may import its own layer and any below.
LAYERS = [
    # foundations: no nucfm imports above
    {"errors", "paths", "resume", "alphabet", "metrics", "distributed", "progress", "interrupts"},
    {"io"},  # files in and out
    {"data"},  # tokens, batches, features
    {"inference"},  # running models: precision, token-budget batches, out-of-memory halving, prefetch
    {"models"},  # architectures, typed configs, structure model
    {"checkpoint"},  # weights: formats, converters, registry, training state
    {"analysis"},  # figures (matplotlib only here)
    {"tasks"},  # library functions behind each command
    {"train"},  # recipes
    {"serve"},  # a future local web server: above the tasks it serves
    {"cli", "__main__", "__init__"},  # the command line and the package facade
]
LEVEL = {name: k for k, names in enumerate(LAYERS) for name in names}
WEIGHT_IO_CALLS = {("torch", "save"), ("torch", "load")}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        top = rel.parts[0].removesuffix(".py")
        yield path, rel, top, ast.parse(path.read_text(), str(path))


def imported_nucfm_modules(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("nucfm."):
                    yield node.lineno, a.name.split(".")[1]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "nucfm":
                for a in node.names:
                    yield node.lineno, a.name
            elif node.module.startswith("nucfm."):
                yield node.lineno, node.module.split(".")[1]


def test_every_module_has_a_layer():
    assert {top for _, _, top, _ in modules()} <= set(LEVEL)


def test_imports_point_down_the_layers():
    upward = []
    for _, rel, top, tree in modules():
        for line, target in imported_nucfm_modules(tree):
            if target in LEVEL and LEVEL[target] > LEVEL[top]:
                upward.append(f"{rel}:{line} imports nucfm.{target}")
    assert upward == []


def test_weights_are_read_and_written_only_in_checkpoint():
    outside = []
    for _, rel, top, tree in modules():
        if top == "checkpoint":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(n.split(".")[0] == "safetensors" for n in names):
                    outside.append(f"{rel}:{node.lineno} imports safetensors")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                base = node.func.value
                if isinstance(base, ast.Name) and (base.id, node.func.attr) in WEIGHT_IO_CALLS:
                    outside.append(f"{rel}:{node.lineno} calls {base.id}.{node.func.attr}")
    assert outside == []


@pytest.mark.parametrize("folder", ["train"])
def test_training_code_is_short_named_steps(folder):
    long = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 60:
                    long.append(f"{path.name}:{node.name} ({n} lines)")
    assert long == []


def test_cli_command_families_share_only_common():
    """``cli/<family>.py`` modules import ``cli.common`` and nothing else of ``cli``: one family
    never reaches into another; ``cli/__init__`` registers them all."""
    crossing = []
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        if path.name in ("__init__.py", "__main__.py", "common.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nucfm.cli"):
                if node.module != "nucfm.cli.common":
                    crossing.append(f"cli/{path.name}:{node.lineno} imports {node.module}")
    assert crossing == []
    assert (PACKAGE / "cli" / "common.py").exists()
