"""The house's rules, checked: layers import one way (no cycles), the core imports no Lightning, TensorBoard or
matplotlib, importing coordnet changes no global state, no function runs past 60 lines, every doc link resolves."""

import ast
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "coordnet"


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        names[name.removesuffix(".__init__")] = path
    return names


def import_graph() -> dict[str, set[str]]:
    """coordnet module → the coordnet modules it imports anywhere in its file (also inside functions)."""
    names = module_names()

    def owner(name: str) -> str:
        while name and name not in names:
            name = name.rpartition(".")[0]
        return name

    graph = {name: set() for name in names}
    for name, path in names.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            graph[name] |= {owner(t) for t in targets if t.startswith("coordnet")} - {name, ""}
    return graph


def cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start → … → start, if there is one (depth-first search)."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def test_no_import_cycles():
    graph = import_graph()
    assert "coordnet.training.module" in graph and graph["coordnet.cli"]  # the graph is really read
    cycles = [cycle for name in graph if (cycle := cycle_through(graph, name))]
    assert not cycles, " ; ".join(" → ".join(c) for c in cycles)


def test_no_cycles_between_the_layers():
    """At the level of the layers (coordnet.models, .ntk, .data, .training, .experiments, .cli, …): one way only."""
    layer = lambda name: ".".join(name.split(".")[:2])  # noqa: E731
    graph: dict[str, set[str]] = {}
    for name, imports in import_graph().items():
        graph.setdefault(layer(name), set()).update(layer(i) for i in imports if layer(i) != layer(name))
    cycles = [cycle for name in graph if (cycle := cycle_through(graph, name))]
    assert not cycles, " ; ".join(" → ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert cycle_through({"a": {"b"}, "b": {"c"}, "c": {"a"}}, "a") == ["a", "b", "c", "a"]
    assert cycle_through({"a": {"b"}, "b": set()}, "a") is None


def test_no_function_is_longer_than_60_lines():
    long = [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in PACKAGE.rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60]
    assert not long, long


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("core", ["coordnet.models", "coordnet.ntk", "coordnet"])
def test_the_core_imports_no_lightning_tensorboard_or_matplotlib(core):
    loaded = run_python(f"import sys, {core}; print(' '.join(sys.modules))").split()
    heavy = [m for m in loaded if m.split(".")[0] in ("pytorch_lightning", "lightning", "tensorboard", "matplotlib")]
    assert not heavy, heavy[:5]


def test_importing_coordnet_sets_no_warning_or_logging_filters():
    code = """
import logging, warnings
import pytorch_lightning, matplotlib, torch, jsonargparse  # their own import-time filters do not count
logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
before = (list(warnings.filters), list(logger.filters))
import coordnet.cli, coordnet.training, coordnet.experiments.study, coordnet.data
assert (list(warnings.filters), list(logger.filters)) == before, [f for f in warnings.filters if f not in before[0]]
"""
    run_python(code)


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation but - and _ dropped, spaces → -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    kept = "".join(ch for ch in text if ch in "-_ " or unicodedata.category(ch)[0] in "LMN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    for line in re.sub(r"```.*?```", "", path.read_text(), flags=re.S).splitlines():
        if match := re.match(r"#{1,6}\s+(.*?)\s*$", line):
            slug = github_anchor(match.group(1))
            seen[slug] = seen.get(slug, -1) + 1
            yield slug if seen[slug] == 0 else f"{slug}-{seen[slug]}"


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_link_in_the_docs_resolves(doc):
    text = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", doc.read_text(), flags=re.S))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        if not resolved.exists() or ROOT not in resolved.parents:
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in set(anchors(resolved)):
            broken.append(target)
    assert not broken, broken


def test_the_readme_reads_in_ten_minutes():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150
