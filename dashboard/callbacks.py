"""Callbacks: thin adapters from inputs to core/ and figures."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from dash import Input, Output, callback

from . import ids
from .data import Catalog
from .figures import cluster_scatter


def view(catalog: Catalog, dataset: str | None, k: int) -> tuple[go.Figure, str]:
    """The cluster map and the summary line of a dataset at ``k`` clusters."""
    if not dataset:
        return cluster_scatter(np.zeros(0), np.zeros(0), np.zeros(0, int), 0, "no dataset"), "No dataset found under the data folder."
    ds = catalog.get(dataset)
    lat, lon = catalog.centres(dataset)
    if k in ds.labels:
        labels = ds.labels[k]
    else:
        from core.clustering import cluster_areas

        labels = cluster_areas(ds.vectors, ds.decoder, k)
    n50 = int((ds.mesh_sizes == 50).sum())
    summary = (f"{ds.city} {ds.period}: {ds.n_meshes:,} meshes ({n50:,} of 50 m, {ds.n_meshes - n50:,} of 250 m; "
               f"{int(ds.complemented.sum()):,} complemented)")
    return cluster_scatter(lat, lon, labels, k, f"{dataset}, k = {k}"), summary


def register(catalog: Catalog) -> None:
    @callback(Output(ids.MAP, "figure"), Output(ids.SUMMARY, "children"), Input(ids.DATASET, "value"), Input(ids.K, "value"))
    def show(dataset: str | None, k: int):
        return view(catalog, dataset, k)
