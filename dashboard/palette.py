"""Cluster colours: 50 colours ordered so that the first k of them are far apart for every k.

Cluster c has colour ``PALETTE[c]`` in every dataset of a space, so a map at k clusters uses the
first k colours. The first 10 are the familiar "tab10" colours (plotly's and matplotlib's default
qualitative set); each next colour is the one farthest (CIELAB distance, CIE76) from every colour
before it and from the map's background (light grey, white) and black (the selected-mesh outline),
chosen from a 16-level sRGB grid limited to lightness 30-85 and chroma <= 75 (no near-white,
near-black or neon colours). Minimum distance between any two of the first k colours: 27.7 for
k = 11..30 (tab10's own closest pair), 25.4 at 40, 22.8 at 50; the previous palette (tab20 then
golden-angle hues) had 7.2 at k = 20 and 1.7 from k = 30.

The list is stored (not computed at import), so that colours never depend on float details of a
machine; ``python -m dashboard.palette`` recomputes and prints it (:func:`farthest_point_order`).
"""

from __future__ import annotations

import numpy as np

from core.geo.tiles import hex_to_rgba

TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
# Colours the cluster colours keep away from: the offline map background, white, black.
AVOID = ("#dddddd", "#ffffff", "#000000")

# fmt: off
PALETTE: tuple[str, ...] = TAB10 + (
    "#445500", "#00eebb", "#ffbb77", "#aacc88", "#990044", "#007755", "#ff8888", "#995500", "#990088", "#2288ff",
    "#bbbbff", "#4433aa", "#ff4488", "#554466", "#ffbbdd", "#005566", "#998855", "#ffbb33", "#882211", "#99dd55",
    "#aa7799", "#ddaa99", "#00bbff", "#aa8811", "#668800", "#55ee88", "#004499", "#dd88ff", "#88bbaa", "#006611",
    "#ff8855", "#99ccee", "#44aa66", "#664411", "#883366", "#556644", "#338888", "#ccbb66", "#bb5566", "#ee44aa",
)
# fmt: on

# How the cluster tiles draw a mesh (dashboard/tiles.py): alpha of a mesh with its own embedding and
# of a complemented 50 m mesh (paler: the same colour, more transparent), in a layer of this opacity.
OWN_ALPHA = 215
COMPLEMENTED_ALPHA = 110
TILE_OPACITY = 0.85


def tile_css(colour: str, alpha: int) -> str:
    """The CSS colour of a tile pixel of ``colour`` at ``alpha`` (0-255) in the map's tile layer.

    A legend swatch with this background looks as the map draws the mesh (own or complemented).
    """
    r, g, b, _ = hex_to_rgba(colour, alpha)
    return f"rgba({r}, {g}, {b}, {alpha / 255 * TILE_OPACITY:.3f})"


def cielab(colours: tuple[str, ...] | list[str]) -> np.ndarray:
    """CIELAB (D65) coordinates ``(n, 3)`` of ``#rrggbb`` colours."""
    rgb = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colours], dtype=np.float64) / 255.0
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def min_distance(colours: tuple[str, ...] | list[str]) -> float:
    """The smallest CIELAB distance between two of ``colours``."""
    lab = cielab(colours)
    d = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def farthest_point_order(n: int = 50, start: tuple[str, ...] = TAB10) -> list[str]:
    """``start``, then greedily the grid colour farthest from all chosen ones and :data:`AVOID` (see the module docstring)."""
    levels = np.arange(0, 256, 17)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    candidates = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in grid]
    lab = cielab(candidates)
    keep = (lab[:, 0] >= 30) & (lab[:, 0] <= 85) & (np.hypot(lab[:, 1], lab[:, 2]) <= 75)
    candidates, lab = [c for c, k in zip(candidates, keep) if k], lab[keep]
    chosen = list(start)
    fixed = cielab(chosen + list(AVOID))
    nearest = np.linalg.norm(lab[:, None] - fixed[None], axis=-1).min(axis=1)
    while len(chosen) < n:
        i = int(np.argmax(nearest))
        chosen.append(candidates[i])
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[i], axis=1))
    return chosen


if __name__ == "__main__":
    order = farthest_point_order()
    print(order)
    for k in (10, 20, 30, 40, 50):
        print(f"k = {k}: minimum CIELAB distance {min_distance(order[:k]):.1f}")
