"""Pure data -> figure builders (unit-testable, no Dash state)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

# A qualitative palette of 20 colours (cluster 0 first).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#ad494a", "#8ca252", "#e7ba52", "#6b6ecf", "#d6616b", "#b5cf6b", "#ce6dbd", "#9c9ede", "#637939",
)


def cluster_color(label: int) -> str:
    return PALETTE[int(label) % len(PALETTE)]


def cluster_scatter(lat: np.ndarray, lon: np.ndarray, labels: np.ndarray, k: int, title: str) -> go.Figure:
    """Mesh centres coloured by cluster, one trace per cluster (legend = clusters with counts)."""
    fig = go.Figure()
    for c in range(k):
        sel = labels == c
        fig.add_trace(go.Scattergl(
            x=lon[sel], y=lat[sel], mode="markers", name=f"cluster {c} ({int(sel.sum()):,})",
            marker={"size": 3, "color": cluster_color(c)}, hoverinfo="name",
        ))
    fig.update_layout(
        title=title, height=640, margin={"l": 40, "r": 10, "t": 40, "b": 40}, legend={"itemsizing": "constant"},
        xaxis={"title": "longitude"}, yaxis={"title": "latitude", "scaleanchor": "x", "scaleratio": 1 / np.cos(np.radians(float(np.mean(lat)) if len(lat) else 35.0))},
        plot_bgcolor="#f4f4f0",
    )
    return fig
