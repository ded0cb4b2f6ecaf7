"""Layout: functions returning components, no callbacks."""

from __future__ import annotations

from dash import dcc, html

from . import ids


def make_layout(datasets: list[str]) -> html.Div:
    return html.Div(className="page", children=[
        html.H1("Area embeddings: cluster map"),
        html.Div(className="controls", children=[
            html.Label(["Dataset", dcc.Dropdown(id=ids.DATASET, options=datasets, value=datasets[0] if datasets else None, clearable=False)]),
            html.Label(["Clusters (k)", dcc.RadioItems(id=ids.K, options=[5, 10, 20], value=10, inline=True)]),
        ]),
        html.Div(id=ids.SUMMARY, className="summary"),
        dcc.Loading(dcc.Graph(id=ids.MAP, config={"displaylogo": False})),
    ])
