"""The task graph as text, Graphviz dot, Mermaid, or PNG (through Graphviz's ``dot``).

Tasks are boxes, artifacts are ellipses; an edge runs from a task to each output and
from each input to the task reading it. Inputs no task produces come from the store.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from aeromancy.errors import UsageError
from aeromancy.planning import TaskGraph

FORMATS = ("text", "dot", "mermaid", "png")


def _artifacts(graph: TaskGraph) -> dict[str, str]:
    """Return every artifact reference in the graph mapped to its type ('store' if external)."""
    kinds: dict[str, str] = {}
    for name in graph.order():
        spec = graph.specs[name]
        for ref in spec.inputs:
            if graph.producer_of(ref) is None:
                kinds.setdefault(ref, "store")
        kinds.update(spec.outputs)
    return kinds


def _edges(graph: TaskGraph) -> Iterator[tuple[str, str, bool]]:
    """Yield (from, to, from_is_task) for every edge, with inputs mapped to artifact names."""
    for name in graph.order():
        spec = graph.specs[name]
        for ref in spec.inputs:
            yield (graph.local_name(ref) if graph.producer_of(ref) else ref) or ref, name, False
        for output in spec.outputs:
            yield name, output, True


def to_text(graph: TaskGraph) -> str:
    """Return one line per task in run order: ``task: inputs -> outputs``."""
    lines = []
    for name in graph.order():
        spec = graph.specs[name]
        inputs = [ref if graph.producer_of(ref) else f"{ref} [store]" for ref in spec.inputs]
        outputs = [f"{out} ({kind})" for out, kind in spec.outputs.items()]
        lines.append(f"{name}: {', '.join(inputs) or '(no inputs)'} -> {', '.join(outputs)}")
    return "\n".join(lines) + "\n"


def to_dot(graph: TaskGraph) -> str:
    """Return the graph in Graphviz dot."""
    lines = [
        "digraph aeromancy {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica"];',
    ]
    for name in graph.order():
        lines.append(f"  {json.dumps('task:' + name)} [label={json.dumps(name)}, shape=box];")
    for ref, kind in _artifacts(graph).items():
        label = json.dumps(f"{ref}\n({kind})")
        style = ", style=dashed" if kind == "store" else ""
        lines.append(f"  {json.dumps('artifact:' + ref)} [label={label}, shape=ellipse{style}];")
    for source, target, from_task in _edges(graph):
        left = ("task:" if from_task else "artifact:") + source
        right = ("artifact:" if from_task else "task:") + target
        lines.append(f"  {json.dumps(left)} -> {json.dumps(right)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: TaskGraph) -> str:
    """Return the graph as a Mermaid flowchart (ids are generated: names may hold '.')."""
    ids: dict[str, str] = {}
    lines = ["flowchart LR"]
    for name in graph.order():
        ids["task:" + name] = f"t{len(ids)}"
        lines.append(f'  {ids["task:" + name]}["{name}"]')
    for ref, kind in _artifacts(graph).items():
        ids["artifact:" + ref] = f"a{len(ids)}"
        lines.append(f'  {ids["artifact:" + ref]}(["{ref} ({kind})"])')
    for source, target, from_task in _edges(graph):
        left = ids[("task:" if from_task else "artifact:") + source]
        right = ids[("artifact:" if from_task else "task:") + target]
        lines.append(f"  {left} --> {right}")
    return "\n".join(lines) + "\n"


def write_png(graph: TaskGraph, output: Path) -> None:
    """Render the graph to a PNG file with Graphviz's ``dot``.

    Raises UsageError when ``dot`` is not installed or fails.
    """
    dot = shutil.which("dot")
    if dot is None:
        raise UsageError(
            "--format png needs Graphviz's `dot`, which is not on PATH",
            "install graphviz (apt-get install graphviz, brew install graphviz) "
            "or use --format dot",
        )
    result = subprocess.run(
        [dot, "-Tpng", "-o", str(output)],
        input=to_dot(graph).encode(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise UsageError(f"graphviz dot failed: {message}")


def render(graph: TaskGraph, fmt: str) -> str:
    """Return the graph as text in ``fmt`` (text, dot or mermaid)."""
    renderers = {"text": to_text, "dot": to_dot, "mermaid": to_mermaid}
    return renderers[fmt](graph)
