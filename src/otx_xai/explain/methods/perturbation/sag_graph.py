"""The picture of a Structured Attention Graph: the shown roots on the top row, their children (one patch
removed) below, each node a thumbnail of the patches it shows with its score, edges labelled by the patch
removed. Built as a networkx DiGraph, laid out by layer and drawn with matplotlib (Agg canvas, no pyplot
state), returned as an RGB array of a fixed size so pictures of a batch stack."""

from __future__ import annotations

import networkx as nx
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from otx_xai.explain.methods.perturbation.sag_search import PatchSet, SagResult, patch_masks

GRAPH_SIZE = (600, 900)  # pixels (height, width) of every graph picture
DPI = 100
KEPT_COLOUR = "#2ca02c"  # a node that keeps ≥ keep · full
LOST_COLOUR = "#d62728"


def display_image(image: np.ndarray) -> np.ndarray:
    """A preprocessed (3, H, W) image as (H, W, 3) floats in [0, 1] for thumbnails (min-max per channel)."""
    low = image.min(axis=(1, 2), keepdims=True)
    high = image.max(axis=(1, 2), keepdims=True)
    return ((image - low) / np.maximum(high - low, 1e-12)).transpose(1, 2, 0)


def sag_networkx(result: SagResult) -> nx.DiGraph:
    """The graph: nodes are patch sets (attributes ``score``, ``layer``: 0 roots, 1 children), edges
    parent → child (attribute ``removed``: the patch)."""
    graph = nx.DiGraph()
    roots = {root.patches for root in result.shown}
    for patches, score in result.nodes.items():
        graph.add_node(patches, score=score, layer=0 if patches in roots else 1)
    for parent, child in result.edges:
        graph.add_edge(parent, child, removed=next(iter(parent - child)))
    return graph


def draw_sag(result: SagResult, image: np.ndarray, grid: int, title: str) -> np.ndarray:
    """The picture (GRAPH_SIZE + (3,)) uint8 of ``result`` over the preprocessed ``image`` (3, H, W)."""
    figure = Figure(figsize=(GRAPH_SIZE[1] / DPI, GRAPH_SIZE[0] / DPI), dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 0.93))
    axes.set_axis_off()
    figure.suptitle(title, fontsize=10)
    graph = sag_networkx(result)
    if graph.number_of_nodes() == 0:
        axes.text(0.5, 0.5, f"no patch set keeps {result.threshold:.3f} (full score {result.full_score:.3f})",
                  ha="center", va="center")
    else:
        positions = _positions(graph)
        nx.draw_networkx_edges(graph, positions, ax=axes, arrows=True, edge_color="#777777",
                               node_size=2200, arrowsize=8)
        nx.draw_networkx_edge_labels(graph, positions, ax=axes, font_size=6,
                                     edge_labels={e: f"−P{graph.edges[e]['removed']}" for e in graph.edges})
        _thumbnails(figure, axes, graph, positions, result, display_image(image), grid)
    canvas.draw()
    picture = np.asarray(canvas.buffer_rgba())[..., :3]
    return np.ascontiguousarray(picture[: GRAPH_SIZE[0], : GRAPH_SIZE[1]])


def _positions(graph: nx.DiGraph) -> dict[PatchSet, np.ndarray]:
    """Roots on a row at the top, children on a row below, each row spread over the width."""
    layout = nx.multipartite_layout(graph, subset_key="layer", align="horizontal", scale=1.0)
    rows: dict[int, list[PatchSet]] = {}
    for node in graph.nodes:
        rows.setdefault(graph.nodes[node]["layer"], []).append(node)
    for layer, nodes in rows.items():
        nodes.sort(key=lambda n: layout[n][0])
        for index, node in enumerate(nodes):
            layout[node] = np.array([(index + 0.5) / len(nodes), 0.72 if layer == 0 else 0.22])
    return layout


def _thumbnails(figure: Figure, axes, graph: nx.DiGraph, positions: dict[PatchSet, np.ndarray],
                result: SagResult, picture: np.ndarray, grid: int) -> None:
    """One inset per node: the image with the node's patches shown and the rest dimmed, its score below."""
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    masks = patch_masks(grid, picture.shape[:2])
    rows = {layer: sum(1 for n in graph.nodes if graph.nodes[n]["layer"] == layer) for layer in (0, 1)}
    for node, (x, y) in positions.items():
        layer = graph.nodes[node]["layer"]
        side = min(0.26, 0.9 / max(rows[layer], 1))
        inset = axes.inset_axes((x - side / 2, y - side / 2 * 0.9, side, side * 0.9), transform=axes.transAxes)
        shown = masks[sorted(node)].sum(axis=0)[..., None] if node else np.zeros((*picture.shape[:2], 1))
        inset.imshow(picture * (0.2 + 0.8 * shown), interpolation="nearest")
        score = graph.nodes[node]["score"]
        colour = KEPT_COLOUR if score >= result.threshold else LOST_COLOUR
        for spine in inset.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(2.5 if layer == 0 else 1.5)
        inset.set_xticks([])
        inset.set_yticks([])
        relative = score / result.full_score if result.full_score > 0 else 0.0
        inset.set_xlabel(f"{score:.3f} ({relative:.0%})", fontsize=7, labelpad=1, color=colour)
