"""The People view: a 2-D projection of user embeddings; a box / lasso selection drives a heatmap of
the selected people's stays (server-rendered tiles), their stacked stay-pattern chart and a summary;
clicking a person shows their week. The logic lives in ``core.walkers.explore``; this is glue.
"""

from __future__ import annotations

import numpy as np
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from core.errors import CoreError
from core.walkers.explore import (
    DAYS,
    FEATURES,
    StayFilter,
    attribute_options,
    calendar_note,
    clamp_week,
    clicked_row,
    colour_values,
    day_panels,
    first_week,
    pattern,
    person_stays,
    stay_mask,
    umap_available,
    week_label,
)
from core.walkers.explore import select as select_rows
from core.walkers.explore import summary as selection_summary

from .. import ids
from .. import people as store
from ..components import make_map, tile_url
from ..figures import HEAT_COLOURS_NOTE, pattern_chart, people_scatter, person_week

DAY_LABELS = {"all": "all", "weekday": "weekdays", "holiday": "weekends / holidays"}
ATTR_LABELS = {
    "commuter": "commuter (truth)",
    "role": "role (truth)",
    "home_district": "home district (truth)",
    "activity": "activity (records)",
    "cluster": "cluster of the embedding (k-means, 6)",
}


def _view(source: str) -> dict:
    """A map viewport over the source's regions."""
    index = store.index(source)
    s, w, n, e = index.bounds
    span = max(n - s, (e - w) * 0.8, 1e-3)
    zoom = int(np.clip(np.floor(np.log2(360 / span)) + 1, 5, 17))
    return {"center": [(s + n) / 2, (w + e) / 2], "zoom": zoom}


def layer_url(source: str | None, token: str | None, day: object, hours: object) -> str:
    """The heatmap tiles' URL for a source, a selection (only when it belongs to that source) and the filter."""
    if not source:
        return ""
    flt = StayFilter.clamp(day, hours)
    params = {"mode": "people", "src": source, "day": flt.day, "h0": flt.h0, "h1": flt.h1}
    sel = store.selection(token)
    if sel is not None and sel[0] == source:
        params["sel"] = token
    return tile_url(params)


def layout(basemap: str | None) -> html.Div:
    try:
        options = store.sources()
    except CoreError:
        options = {}
    value = store.default_source(options)
    return html.Div(
        className="people-tab",
        children=[
            html.Div(
                className="controls",
                children=[
                    html.Label(
                        [
                            "People from",
                            dcc.Dropdown(
                                id=ids.PEOPLE_SOURCE,
                                options=[{"label": lab, "value": k} for k, (lab, _) in options.items()],
                                value=value,
                                clearable=False,
                            ),
                        ],
                        className="wide",
                    ),
                    html.Label(["Colour by", dcc.Dropdown(id=ids.PEOPLE_COLOUR, options=[], value=None, clearable=False)]),
                    html.Label(
                        [
                            "Projection",
                            dcc.RadioItems(
                                id=ids.PEOPLE_METHOD,
                                inline=True,
                                value="pca",
                                options=[
                                    {"label": "PCA", "value": "pca"},
                                    {"label": "UMAP", "value": "umap", "disabled": not umap_available()},
                                ],
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            "Stays on",
                            dcc.RadioItems(
                                id=ids.PEOPLE_DAY,
                                inline=True,
                                value="all",
                                options=[{"label": DAY_LABELS[d], "value": d} for d in DAYS],
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            "Arriving between (hours)",
                            dcc.RangeSlider(
                                id=ids.PEOPLE_HOURS,
                                min=0,
                                max=24,
                                step=1,
                                value=[0, 24],
                                marks={h: str(h) for h in range(0, 25, 6)},
                            ),
                        ],
                        className="slider",
                    ),
                    html.Button("Clear selection", id=ids.PEOPLE_CLEAR, n_clicks=0),
                ],
            ),
            html.Div(id=ids.PEOPLE_MSG, className="hint", role="status"),
            dcc.Store(id=ids.PEOPLE_TOKEN),
            html.Div(
                className="row",
                children=[
                    html.Div(
                        className="half",
                        children=[
                            dcc.Graph(id=ids.PEOPLE_SCATTER, config={"displaylogo": False}),
                            html.Div(id=ids.PEOPLE_VARIANCE, className="hint"),
                        ],
                    ),
                    html.Div(
                        className="half",
                        children=[
                            html.H3("Where they stay (" + HEAT_COLOURS_NOTE + ")"),
                            html.Div(
                                id=ids.PEOPLE_MAP_BOX,
                                children=[make_map(ids.PEOPLE_MAP, ids.PEOPLE_LAYER, basemap, None, height="460px")],
                            ),
                        ],
                    ),
                ],
            ),
            html.Div(
                className="row",
                children=[
                    html.Div(className="half", children=[dcc.Graph(id=ids.PEOPLE_CHART, config={"displaylogo": False})]),
                    html.Div(
                        className="half",
                        children=[
                            html.Div(id=ids.PEOPLE_SUMMARY, className="summary", role="status"),
                            html.Div(
                                id=ids.PEOPLE_PERSON,
                                style={"display": "none"},
                                children=[
                                    html.Label(
                                        [
                                            "Week ",
                                            dcc.Input(
                                                id=ids.PEOPLE_WEEK_NO, type="number", min=1, step=1, value=1, debounce=True
                                            ),
                                        ]
                                    ),
                                    dcc.Graph(id=ids.PEOPLE_WEEK, config={"displaylogo": False}),
                                ],
                            ),
                        ],
                    ),
                ],
            ),
        ],
    )


def _method(method: object) -> str:
    """The projection a browser value names: ``pca`` or ``umap`` (anything else: ``pca``)."""
    return str(method) if method in ("pca", "umap") else "pca"


@callback(
    Output(ids.PEOPLE_COLOUR, "options"),
    Output(ids.PEOPLE_COLOUR, "value"),
    Output(ids.PEOPLE_MAP_BOX, "children"),
    Output(ids.PEOPLE_MSG, "children"),
    Input(ids.PEOPLE_SOURCE, "value"),
    State(ids.PEOPLE_COLOUR, "value"),
    State(ids.PEOPLE_DAY, "value"),
    State(ids.PEOPLE_HOURS, "value"),
)
def open_source(source, colour, day, hours):
    """A new source: its colour choices, a map over its regions, and what its embeddings are."""
    from ..catalog import app_context

    if source not in store.sources():
        return [], None, no_update, "Nothing to show: no walkers run or stays file under the data folder."
    try:
        people = store.get(source)
    except CoreError as exc:
        return [], None, no_update, f"Cannot open {source}: {exc}"
    attrs = attribute_options(people)
    value = colour if colour in attrs else attrs[0]
    basemap = app_context().basemap
    box = [
        make_map(
            ids.PEOPLE_MAP,
            ids.PEOPLE_LAYER,
            basemap,
            _view(source),
            url=layer_url(source, None, day, hours),
            height="460px",
        )
    ]
    msg = f"{people.n:,} people, {len(people.person):,} stays. Embeddings: {people.encoder}. {calendar_note(people)}"
    if people.encoder == FEATURES:
        msg += " Train a walkers run ('python -m core walkers train FILE --out DATA/walkers/NAME') to explore model embeddings."
    return [{"label": ATTR_LABELS.get(a, a), "value": a} for a in attrs], value, box, msg


@callback(
    Output(ids.PEOPLE_SCATTER, "figure"),
    Output(ids.PEOPLE_VARIANCE, "children"),
    Input(ids.PEOPLE_SOURCE, "value"),
    Input(ids.PEOPLE_COLOUR, "value"),
    Input(ids.PEOPLE_METHOD, "value"),
    Input(ids.PEOPLE_CLEAR, "n_clicks"),
)
def draw_scatter(source, colour, method, clears):
    if source not in store.sources() or not colour:
        return no_update, no_update
    people = store.get(source)
    method = _method(method)
    proj = store.projection(source, method)
    colour = colour if colour in attribute_options(people) else "activity"
    cat, names = colour_values(people, colour)
    title = f"{people.n:,} people, {proj.method.upper()} of standardised embeddings ({people.encoder})"
    fig = people_scatter(proj.xy, cat, names, title, revision=int(clears or 0), person_ids=people.uids)
    ev = ", ".join(f"{100 * v:.1f} %" for v in proj.explained[:8])
    return fig, f"Explained variance per principal component (first {min(8, len(proj.explained))}): {ev}."


@callback(
    Output(ids.PEOPLE_TOKEN, "data"),
    Input(ids.PEOPLE_SCATTER, "selectedData"),
    Input(ids.PEOPLE_CLEAR, "n_clicks"),
    Input(ids.PEOPLE_SOURCE, "value"),
    State(ids.PEOPLE_METHOD, "value"),
)
def remember(selected, clears, source, method):
    """The drawn box / lasso -> rows (on the server, from the polygon), kept under a token."""
    if ctx.triggered_id != ids.PEOPLE_SCATTER or source not in store.sources():
        return None
    proj = store.projection(source, _method(method))
    rows = select_rows(proj.xy, selected)
    if rows is None:
        return None
    return store.remember_selection(source, rows)


@callback(
    Output(ids.PEOPLE_LAYER, "url"),
    Output(ids.PEOPLE_CHART, "figure"),
    Output(ids.PEOPLE_SUMMARY, "children"),
    Input(ids.PEOPLE_TOKEN, "data"),
    Input(ids.PEOPLE_DAY, "value"),
    Input(ids.PEOPLE_HOURS, "value"),
    State(ids.PEOPLE_SOURCE, "value"),
)
def show_selection(token, day, hours, source):
    if source not in store.sources():
        return no_update, no_update, no_update
    people = store.get(source)
    sel = store.selection(token)
    rows = sel[1] if sel is not None and sel[0] == source else None
    flt = StayFilter.clamp(day, hours)
    mask = stay_mask(people, rows, flt)
    info = selection_summary(people, rows, mask)
    who = "everyone" if rows is None else f"{info['people']:,} selected people"
    when = f"{flt.day} days, arriving {flt.h0:02d}-{flt.h1:02d} h"
    fig = pattern_chart(
        pattern(people, mask),
        f"Stay pattern of {who} ({info['stays']:,} stays; {when})",
        panels=day_panels(people),
        values="stays",
    )
    share = "unknown" if info["commuter_share"] is None else f"{100 * info['commuter_share']:.1f} %"
    places = [html.Li(f"mesh {p['code']} ({p['mesh_size']} m): {p['stays']:,} stays") for p in info["top_places"]]
    text = [
        html.Div(
            [
                html.Span(f"{info['people']:,}", id="people-count"),
                " people, ",
                html.Span(f"{info['stays']:,}", id="people-stays"),
                f" stays ({when}); commuters: {share}",
            ]
        ),
        html.Div(_holiday_line(people, info)),
        html.Div("Top places:"),
        html.Ol(places),
        html.Div("Click a person in the scatter to see their week.", className="hint"),
    ]
    return layer_url(source, token, day, hours), fig, text


def _holiday_line(people, info: dict) -> str:
    """How many of the stays fall on days off, in the words of the chart's second panel."""
    if not people.weekday_known:
        return calendar_note(people)
    if not people.dates_known:
        return f"Weekend stays: {info['holiday_stays']:,}. " + calendar_note(people)
    return (
        f"Weekend / holiday stays: {info['holiday_stays']:,} ({info['national_holiday_stays']:,} on national holidays,"
        f" {people.country} calendar)."
    )


@callback(
    Output(ids.PEOPLE_WEEK, "figure"),
    Output(ids.PEOPLE_PERSON, "style"),
    Output(ids.PEOPLE_WEEK_NO, "value"),
    Input(ids.PEOPLE_SCATTER, "clickData"),
    Input(ids.PEOPLE_WEEK_NO, "value"),
    State(ids.PEOPLE_SOURCE, "value"),
    State(ids.PEOPLE_METHOD, "value"),
)
def show_person(click, week, source, method):
    """A clicked person's stays in the chosen week of the source (clamped to the weeks it spans) as a timeline."""
    if source not in store.sources() or not isinstance(click, dict):
        return no_update, no_update, no_update
    people = store.get(source)
    row = clicked_row(store.projection(source, _method(method)).xy, click)
    if row is None:
        return no_update, no_update, no_update
    # A newly clicked person opens on their first week with stays; the week box then moves through theirs.
    week = first_week(people, row) if ctx.triggered_id == ids.PEOPLE_SCATTER else clamp_week(people, week)
    st = person_stays(people, row, week)
    n_all = int(np.diff(people.offsets()[row : row + 2])[0])
    fig = person_week(
        st["day"].to_numpy(),
        st["weekday"].to_numpy(),
        st["minute"].to_numpy(),
        st["duration"].to_numpy(),
        st["code"].to_numpy(),
        f"Person {people.uids[row]}: {week_label(people, week)}, {len(st)} of {n_all} stays",
        labels=st["label"].tolist(),
    )
    return fig, {"display": "block"}, week
