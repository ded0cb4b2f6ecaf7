"""Area2Vec as a region method on the demo world's people: graphs from stays, embeddings in one space."""

from __future__ import annotations

import numpy as np

from core.area2vec.trainer import TrainConfig
from core.regions.graph import graph_from_stays
from core.regions.methods import fit_area2vec
from core.simulation.world import CITIES, Period, build_grid, make_population, simulate_month


def _city(name: str, seed: int):
    grid = build_grid(CITIES[name], seed)
    stays = simulate_month(grid, make_population(grid, 0.2, seed), Period(2019, 4), seed)
    return stays, graph_from_stays(stays, mesh_size=250, name=name)


def test_area2vec_embeds_both_cities_in_graph_order() -> None:
    (sa, ga), (sb, gb) = _city("sendai", 1), _city("kyoto", 2)
    assert ga.n > 50 and gb.n > 50 and len(ga.weight) > ga.n
    za, zb = fit_area2vec(
        [sa, sb],
        [ga, gb],
        mesh_size=250,
        n_anchors=16,
        records_per_anchor=300,
        config=TrainConfig(seed=0, max_epochs=40, schedule_epochs=20, refine_rounds=0, newton_iters=10),
    )
    assert za.shape == (ga.n, 8) and zb.shape == (gb.n, 8)
    # Every graph region had stays, so no row is left at zero.
    assert not (za == 0).all(axis=1).any()
    # One space: the two cities' embeddings overlap (centroid distance small beside their spread).
    spread = np.linalg.norm(za - za.mean(0), axis=1).mean()
    assert np.linalg.norm(za.mean(0) - zb.mean(0)) < spread
