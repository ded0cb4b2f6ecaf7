"""Pure data -> figure builders (unit-testable, no Dash state)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from .palette import PALETTE
from .plotly_text import plotly_text

# Distance classes 0 (the mesh itself) .. 5 (>= 16): dark to light.
DISTANCE_COLOURS = ("#000000", "#b30000", "#e34a33", "#fc8d59", "#fdcc8a", "#fef0d9")
DISTANCE_LABELS = ("the mesh", "<= 2", "2 - 4", "4 - 8", "8 - 16", ">= 16")
CHANGE_COLOURS = ("#9ecae1", "#d7301f")
# A diff's embedding distance between the periods, by class (core.analysis.diff.DISTANCE_QUANTILES):
# pale = barely moved, dark red = moved the most (the reverse of the OpenUAS ramp, where dark = close).
DIFF_DISTANCE_COLOURS = ("#fef0d9", "#fdcc8a", "#fc8d59", "#e34a33", "#b30000")
# Meshes outside a highlighted transition-matrix cell.
FADED_COLOUR = "#bdbdbd"
# The transition matrix: ColorBrewer Blues, 0 meshes lightest, the largest count darkest (Plotly's own
# "Blues" runs the other way: dark blue at 0). Plotly picks dark or light cell text by contrast.
MATRIX_COLOURS = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b")
# Similar areas by percent or rank: the selected mesh, its matches, every other mesh (pale).
MATCH_COLOURS = ("#000000", "#c51b8a", "#bdbdbd")
DURATION_LABELS = ("<= 30 min", "30-60 min", "1-2 h", "2-4 h", "4-6 h", "6-12 h", "> 12 h")
DURATION_COLOURS = ("#fde725", "#90d743", "#35b779", "#21918c", "#31688e", "#443983", "#440154")
# People heatmap: stays per mesh on a log scale, pale (few) to dark red (the most).
HEAT_COLOURS = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026", "#800026")
HEAT_COLOURS_NOTE = "stays per mesh, log scale: pale yellow = few, dark red = the most"
TIME_LABELS = tuple(f"{2 * b:02d}-{2 * b + 2:02d}h" for b in range(12))


def count_of(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and its noun, singular or plural: ``count_of(1, "mesh", "meshes")`` -> ``"1 mesh"``, 1,016 -> ``"1,016 meshes"``."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


def cluster_color(label: int) -> str:
    return PALETTE[int(label) % len(PALETTE)]


# Every graph's toolbar: no plotly logo, nothing that uploads the data (mobility data stays here).
GRAPH_CONFIG: Any = {
    "displaylogo": False,
    "showSendToCloud": False,
    "showEditInChartStudio": False,
    "modeBarButtonsToRemove": ["sendDataToCloud", "editInChartStudio", "lasso2d", "select2d"],
    "toImageButtonOptions": {"format": "png", "scale": 2},
}


# A figure as the plain spec that plotly.js draws (``{"data": [...], "layout": {...}}``), what ``dcc.Graph``
# accepts: ``go.Figure(spec)`` validates it and gives attribute access (the tests do).
FigureSpec = dict[str, Any]


@functools.cache
def _template() -> dict:
    """Plotly's default template as JSON data (what ``go.Figure`` writes into every layout); read-only, shared."""
    return pio.templates[pio.templates.default].to_plotly_json()


def _figure(data: list[dict], layout: dict) -> FigureSpec:
    """A figure spec from plain data and layout, with plotly's default template as ``go.Figure`` adds it.

    The browser gets the same JSON as from ``go.Figure({"data": data, "layout": layout})`` (a test
    checks), without building one: building and serialising a ``go.Figure`` (validation, template and
    deep copies) was the largest cost of a click (a pattern chart 36 ms validated, 3.1 ms unvalidated,
    0.08 ms as a spec). The specs here are fixed by this module; the tests validate each of them.
    """
    return {"data": data, "layout": {**layout, "template": _template()}}


# What the values of a stay-pattern chart are (core/analysis/charts.py: a mesh's stay distribution,
# whose shares sum to 1, spread over every 2-hour bin a stay spans; weekday stays weigh 2/7 and
# holiday stays 5/7 so that 5 weekdays and 2 holidays compare per day), by how the chart was made:
# axis title (plain words, units), hover wording and tick format.
PATTERN_VALUES: dict[str, tuple[str, str, str]] = {
    "share": ("share of stays (one mesh)", "of the mesh's stays", ".2~%"),
    "mean": ("share of stays (mean per mesh)", "of a mesh's stays (mean over its meshes)", ".2~%"),
    "sum": ("sum of the meshes' shares", "(sum over the meshes of each one's share of stays; 1 = all of one mesh's)", ""),
    "stays": ("stays (weighted count)", "stays", ""),
    # A caller that does not say (values=None): a chart whose stacked bars stay within 1 is shares
    # (one mesh, or a mean); a larger one is named only as weighted stays (a sum of shares, or counts).
    "some share": ("share of stays", "of stays", ".2~%"),
    "weighted": ("stays (weighted)", "(weighted stays)", ""),
}
PATTERN_HOVER_NOTE = "a stay counts in every 2-hour bin it spans; weekday stays weigh 2/7, holiday stays 5/7"
PATTERN_X_TITLE = "time of day"


def _pattern_bars(
    chart: np.ndarray, xaxis: str, yaxis: str, legend: bool, hover: bool = True, values: str = "share", day: str = ""
) -> list[dict]:
    bars = []
    _, unit, fmt = PATTERN_VALUES[values]
    number = "%{y:" + (fmt or ".3~g") + "}"
    for c in range(7):
        bar = {
            "type": "bar",
            "x": list(TIME_LABELS),
            "y": chart[:, c].tolist(),
            "name": DURATION_LABELS[c],
            "marker": {"color": DURATION_COLOURS[c]},
            "legendgroup": str(c),
            "showlegend": legend,
            "xaxis": xaxis,
            "yaxis": yaxis,
        }
        if hover:
            bar["hovertemplate"] = (
                f"{day} %{{x}}, stays of {DURATION_LABELS[c]}: {number} {unit}<br>({PATTERN_HOVER_NOTE})<extra></extra>"
            )
        bars.append(bar)
    return bars


def _pattern_legend() -> dict:
    """The stay-length legend: one horizontal row (or two when narrow) under the chart, every class visible."""
    return {
        "orientation": "h",
        "font": {"size": 10},
        "title": {"text": "stay length", "side": "top"},
        "x": 0.0,  # from the plot's left edge: plotly wraps a horizontal legend at the plot's width
        "xanchor": "left",
        "y": 0.0,
        "yanchor": "bottom",
        "yref": "container",
        "itemwidth": 30,
        "tracegroupgap": 0,
    }


def _panel_title(text: str, x: float, y: float = 1.0, size: int = 16) -> dict:
    return {
        "text": text,
        "x": x,
        "y": y,
        "xref": "paper",
        "yref": "paper",
        "xanchor": "center",
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": size},
    }


def pattern_chart(
    chart: np.ndarray,
    title: str,
    height: int = 380,
    y_range: list[float] | None = None,
    x_title: str = PATTERN_X_TITLE,
    tickangle: int | None = None,
    panels: tuple[str, str] = ("weekday", "holiday"),
    values: str | None = None,
) -> FigureSpec:
    """Stacked stay-pattern chart ``(2, 12, 7)``: weekday and holiday panels (one y scale), bars by duration.

    Args:
        panels: the names of the two day types (a source without calendar dates says what its
            second one holds).
        values: what the chart's numbers are (:data:`PATTERN_VALUES`): ``share`` one mesh's chart,
            ``mean`` the mean of meshes' charts, ``sum`` their sum, ``stays`` a chart of counted stays
            (people). It sets the y-axis title, the hover text and the tick format. ``None``: told
            from the chart (shares when no stacked bar exceeds 1, else weighted stays).
    """
    chart = np.asarray(chart, dtype=np.float64)
    if values is None:
        values = "some share" if chart.sum(axis=-1).max(initial=0.0) <= 1.0 else "weighted"
    if values not in PATTERN_VALUES:
        raise ValueError(f"values must be one of {sorted(PATTERN_VALUES)}, got {values!r}")
    data = _pattern_bars(chart[0], "x", "y", True, values=values, day=panels[0]) + _pattern_bars(
        chart[1], "x2", "y2", False, values=values, day=panels[1]
    )
    y_title, _, fmt = PATTERN_VALUES[values]
    xaxis: dict[str, Any] = {"title": {"text": x_title, "standoff": 4}, "anchor": "y", "automargin": True}
    if tickangle is not None:
        xaxis["tickangle"] = tickangle
    yaxis: dict[str, Any] = {"title": {"text": y_title}, "anchor": "x", "domain": [0.0, 1.0], "tickformat": fmt}
    yaxis2: dict[str, Any] = {"anchor": "x2", "domain": [0.0, 1.0], "matches": "y", "showticklabels": False}
    if y_range is not None:
        yaxis["range"] = yaxis2["range"] = list(y_range)
    layout = {
        "barmode": "stack",
        "title": {"text": title, "font": {"size": 14}},
        "height": height,
        # Bottom: the tick labels, the x title and the legend's one or two rows.
        "margin": {"l": 55, "r": 10, "t": 50, "b": 100},
        "legend": _pattern_legend(),
        "bargap": 0.1,
        "xaxis": {**xaxis, "domain": [0.0, 0.48]},
        "xaxis2": {**xaxis, "anchor": "y2", "domain": [0.52, 1.0]},
        "yaxis": yaxis,
        "yaxis2": yaxis2,
        "annotations": [_panel_title(name, x, size=16 if len(name) <= 12 else 11) for name, x in zip(panels, (0.24, 0.76))],
    }
    return _figure(data, layout)


def pattern_pair(
    chart_a: np.ndarray, chart_b: np.ndarray, title_a: str, title_b: str, height: int = 380, values: str = "share"
) -> tuple[FigureSpec, FigureSpec]:
    """Before / after: two :func:`pattern_chart` figures on one y scale (the taller one's), of one mesh each by default."""
    stacked = [np.asarray(c, dtype=np.float64).sum(axis=-1).max(initial=0.0) for c in (chart_a, chart_b)]
    top = max(stacked) * 1.05 or 1.0
    a, b = (
        pattern_chart(chart, title, height, y_range=[0, top], tickangle=-60, values=values)
        for chart, title in ((chart_a, title_a), (chart_b, title_b))
    )
    return a, b


def transition_heatmap(
    matrix: np.ndarray, label_a: str, label_b: str, names: list[str] | None = None, cell: tuple[int, int] | None = None
) -> FigureSpec:
    """Cluster -> cluster transition counts (rows: period A, columns: period B), cluster names on the axes.

    ``cell`` (cluster in A, cluster in B) is outlined: the highlighted transition.
    """
    m = np.asarray(matrix)
    k = m.shape[0]
    z = m.astype(int).tolist()  # plain lists: small, and readable by anyone inspecting the figure
    names = list(names) if names is not None and len(names) == k else [f"cluster {c}" for c in range(k)]
    ticks = [f"{c}: {n}" for c, n in enumerate(names)]
    shown = {"tickmode": "array", "tickvals": ticks, "ticktext": [plotly_text(t) for t in ticks]}
    total = int(m.sum())
    stayed = float(np.trace(m)) / total if total else float("nan")
    trace = {
        "type": "heatmap",
        "z": z,
        "x": ticks,
        "y": ticks,
        "colorscale": [[i / (len(MATRIX_COLOURS) - 1), c] for i, c in enumerate(MATRIX_COLOURS)],
        "zmin": 0,
        "zmax": max(int(m.max()) if m.size else 0, 1),
        "text": z,
        "texttemplate": "%{text}",
        "customdata": [["mesh" if v == 1 else "meshes" for v in row] for row in z],
        "hovertemplate": "A: %{y}<br>B: %{x}<br>%{z:,} %{customdata}<extra></extra>",
        "colorbar": {"title": {"text": "meshes"}},
    }
    layout: dict[str, Any] = {
        "title": {
            "text": f"clusters (k = {k}): {label_a} -> {label_b}<br>{count_of(total, 'mesh', 'meshes')} in both; {stayed:.0%} stayed in their cluster",
            "font": {"size": 13},
        },
        "height": max(420, 140 + 26 * k),
        "margin": {"l": 10, "r": 10, "t": 60, "b": 10},
        # The names are the categories (clicks and hover carry them); their tick text is escaped, as
        # plotly reads markup there and a name is what a person typed.
        "xaxis": {"title": {"text": f"cluster in B ({label_b})"}, "tickangle": -40, "automargin": True, **shown},
        "yaxis": {"title": {"text": f"cluster in A ({label_a})"}, "autorange": "reversed", "automargin": True, **shown},
    }
    if cell is not None and 0 <= cell[0] < k and 0 <= cell[1] < k:
        i, j = int(cell[0]), int(cell[1])
        layout["shapes"] = [
            {
                "type": "rect",
                "x0": j - 0.5,
                "x1": j + 0.5,
                "y0": i - 0.5,
                "y1": i + 0.5,
                "xref": "x",
                "yref": "y",
                "line": {"color": "#d7301f", "width": 3},
            }
        ]
    fig = _figure([trace], layout)
    return fig


def class_charts(charts: np.ndarray, labels: tuple[str, ...], reduce: str, height: int = 620) -> FigureSpec:
    """Small multiples: one weekday + holiday chart per class (rows), e.g. per distance class.

    ``reduce`` (``sum`` or ``mean`` over each class's meshes) names the values in the title (:data:`PATTERN_VALUES`).
    """
    n = len(charts)
    what, _, fmt = PATTERN_VALUES["mean" if reduce == "mean" else "sum"]
    gap_v, gap_h = 0.04, 0.1  # room for the holiday panels' tick labels
    row_h = (1.0 - gap_v * (n - 1)) / max(n, 1)
    data: list[dict] = []
    layout: dict[str, Any] = {
        "barmode": "stack",
        "height": height,
        "title": {"text": f"stay patterns by distance to the clicked mesh<br>{what}", "font": {"size": 14}},
        "margin": {"l": 40, "r": 10, "t": 70, "b": 90},
        "legend": _pattern_legend(),
        "bargap": 0.1,
        "annotations": [],
    }
    for r, lab in enumerate(labels[:n]):
        top = 1.0 - r * (row_h + gap_v)
        for d in range(2):
            i = 2 * r + d + 1  # axis number, row by row as make_subplots numbers them
            xa, ya = ("x", "y") if i == 1 else (f"x{i}", f"y{i}")
            data += _pattern_bars(np.asarray(charts[r, d], dtype=np.float64), xa, ya, r == 0 and d == 0, hover=False)
            x_dom = [0.0, 0.5 - gap_h / 2] if d == 0 else [0.5 + gap_h / 2, 1.0]
            xaxis: dict[str, Any] = {"anchor": ya, "domain": x_dom}
            if r < n - 1:  # shared x: only the bottom row shows tick labels
                xaxis["matches"] = f"x{2 * (n - 1) + d + 1}" if 2 * (n - 1) + d + 1 > 1 else "x"
                xaxis["showticklabels"] = False
            layout["xaxis" if i == 1 else f"xaxis{i}"] = xaxis
            layout["yaxis" if i == 1 else f"yaxis{i}"] = {
                "anchor": xa,
                "domain": [max(top - row_h, 0.0), top],
                "tickformat": fmt,
            }
            layout["annotations"].append(
                _panel_title(f"{lab}: {'weekday' if d == 0 else 'holiday'}", (x_dom[0] + x_dom[1]) / 2, top, size=10)
            )
    return _figure(data, layout)


def people_scatter(
    xy: np.ndarray, category: np.ndarray, names: list[str], title: str, revision: int = 0, person_ids: np.ndarray | None = None
) -> go.Figure:
    """People in the 2-D projection, one WebGL trace per category; ``customdata`` = the person's id
    (``person_ids``, as the person panel names them; the row without it), for the hover label.

    Box and lasso select on; ``selectionrevision`` changes with ``revision`` so that a new value clears
    the drawn selection.
    """
    xy = np.asarray(xy, dtype=np.float32)
    cat = np.asarray(category, dtype=np.int64)
    fig = go.Figure()
    for c, name in enumerate(names):
        rows = np.flatnonzero(cat == c)
        if len(rows) == 0:
            continue
        fig.add_trace(
            go.Scattergl(
                x=xy[rows, 0],
                y=xy[rows, 1],
                # For the hover label only: click events leave typed customdata out (explore.clicked_row).
                customdata=rows if person_ids is None else np.asarray(person_ids)[rows],
                mode="markers",
                name=f"{name} ({len(rows):,})",
                marker={"size": 4, "color": PALETTE[c % len(PALETTE)], "opacity": 0.6},
                hovertemplate=("person row" if person_ids is None else "person") + " %{customdata}<extra>" + name + "</extra>",
                unselected={"marker": {"opacity": 0.12}},
            )
        )
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        height=460,
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
        dragmode="lasso",
        uirevision="people",
        selectionrevision=revision,
        legend={"font": {"size": 10}, "itemsizing": "constant"},
        xaxis={"title": {"text": "component 1"}},
        yaxis={"title": {"text": "component 2"}},
    )
    return fig


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def person_week(
    day: np.ndarray,
    weekday: np.ndarray,
    minute: np.ndarray,
    duration: np.ndarray,
    place: np.ndarray,
    title: str,
    labels: list[str] | None = None,
) -> go.Figure:
    """One person's stays as a timeline: a row per day, a bar from arrival to departure, coloured by place.

    ``labels``: each stay's day label (such as its date); default ``day 3 (Thu)``.
    """
    fig = go.Figure()
    if labels is None:
        labels = [f"day {d}" + (f" ({WEEKDAYS[w]})" if 0 <= w < 7 else "") for d, w in zip(day, weekday)]
    start_h = np.asarray(minute, np.float64) / 60
    length = np.minimum(np.asarray(duration, np.float64) / 60, 24 - start_h)
    places = list(dict.fromkeys(int(p) for p in place))
    for i, p in enumerate(places):
        sel = np.flatnonzero(np.asarray(place) == p)
        fig.add_trace(
            go.Bar(
                y=[labels[j] for j in sel],
                x=length[sel],
                base=start_h[sel],
                orientation="h",
                name=f"mesh {p}",
                marker_color=PALETTE[i % len(PALETTE)],
                hovertemplate="%{y}: %{base:.1f} h for %{x:.1f} h<extra>mesh " + str(p) + "</extra>",
            )
        )
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        barmode="overlay",
        height=320,
        margin={"l": 90, "r": 10, "t": 50, "b": 40},
        xaxis={"title": {"text": "hour of day"}, "range": [0, 24], "dtick": 3},
        yaxis={
            "autorange": "reversed",
            "automargin": True,
            "type": "category",
            "categoryorder": "array",
            "categoryarray": list(dict.fromkeys(labels)),
        },
        legend={"font": {"size": 10}},
    )
    return fig
