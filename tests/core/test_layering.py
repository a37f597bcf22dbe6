"""Dependencies point one way: the core never imports diffusers or the adapters."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "interp": {"diffusers", "models", "saes", "transformers"},
    "saes": {"diffusers", "models"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upward(package):
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_roots(path) & FORBIDDEN[package]
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}, f"{package}/ must not import {sorted(FORBIDDEN[package])}: {offenders}"


def test_the_check_catches_an_upward_import(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("import torch\nfrom diffusers import UNet2DConditionModel\n")
    assert imported_roots(sample) & FORBIDDEN["interp"] == {"diffusers"}


# Inside interp/: the layers of docs/architecture.md, lowest first. A module may import
# its own layer and those below, never one above (imports inside functions included).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "interp.errors",
            "interp.types",
            "interp.quiet",
            "interp.plugins",
            "interp.statistics",
            "interp.prompts",
            "interp.progress",
            "interp.progress_display",
            "interp.request_checks",
            "interp.backend",
            "interp.significance",
            "interp.selection",
            "interp.context_tokens",
            "interp.windows",
            "interp.memory",
        ),
    ),
    ("sites", ("interp.sites", "interp.components", "interp.catalog")),
    ("edits", ("interp.edits",)),
    (
        "runner",
        (
            "interp.runner",
            "interp.execution_order",
            "interp.adapter",
            "interp.cost",
            "interp.registry",
            "interp.distributed",
            "interp.batching",
            "interp.read_store",
        ),
    ),
    (
        "methods",
        (
            "interp.metrics",
            "interp.metric_library",
            "interp.scorers",
            "interp.pairsources",
            "interp.patching",
            "interp.patch_variants",
            "interp.sweep_chunks",
            "interp.listening",
            "interp.attribution",
            "interp.localization",
            "interp.time_patching",
            "interp.plots",
            "interp.steering",
            "interp.sitedocs",
            "interp.attention_patterns",
            "interp.word_reading",
        ),
    ),
    ("framework", ("interp.experiments",)),
    ("spec steps", ("interp.spec_steps",)),
    ("cli", ("interp.cli",)),
]

#: Upward imports that exist today, each for a reason; this list may only shrink.
KNOWN_UPWARD = {
    # small file helpers that live with the run units (lazy imports)
    ("interp.sweep_chunks", "interp.experiments.units"),
    ("interp.distributed.executor", "interp.experiments.units"),
    # a Ray worker loads its model the way a run does (lazy import)
    ("interp.distributed.ray_pool", "interp.experiments"),
    # the framework registers its one built-in step, 'generate'
    ("interp.experiments", "interp.spec_steps"),
}


def layer_of(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer of LAYERS: add it (and to docs/architecture.md)")


def interp_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("interp."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("interp."):
                found.add(node.module)
            elif node.module == "interp":
                found.update(f"interp.{a.name}" for a in node.names)
    return found


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def test_interp_layers_import_downward_only():
    upward = set()
    for path in sorted((ROOT / "interp").rglob("*.py")):
        module = module_name(path)
        if module == "interp":
            continue  # the lazy public namespace re-exports every layer
        for target in interp_imports(path):
            if layer_of(target) > layer_of(module):
                upward.add((module, target))
    assert upward - KNOWN_UPWARD == set(), "upward imports (see docs/architecture.md)"
    assert KNOWN_UPWARD - upward == set(), "a known upward import is gone: drop it from KNOWN_UPWARD"


def test_every_interp_module_has_a_layer():
    for path in (ROOT / "interp").rglob("*.py"):
        if module_name(path) != "interp":
            layer_of(module_name(path))


def test_the_layer_check_catches_a_method_importing_a_spec_step(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("def f():\n    from interp.spec_steps.common import PairsSpec\n")
    (target,) = interp_imports(sample)
    assert layer_of(target) > layer_of("interp.patching")
