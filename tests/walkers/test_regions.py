"""Region embeddings: the sum (or mean) over a region's distinct visitors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.walkers.regions import read_regions_csv, region_embeddings, write_regions
from core.walkers.trajectories import trajectories_from_frame


def test_region_is_sum_of_distinct_visitors(tmp_path):
    # HuMob records: person 0 visits cell (1,1) twice and (2,2); person 1 visits (1,1); person 2 (2,2) and (3,3).
    frame = pd.DataFrame(
        [(0, 0, 0, 1, 1), (0, 0, 5, 2, 2), (0, 1, 0, 1, 1), (1, 0, 1, 1, 1), (2, 0, 2, 2, 2), (2, 0, 9, 3, 3)],
        columns=["uid", "d", "t", "x", "y"],
    )
    tr = trajectories_from_frame(frame, "h.csv")
    users = np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0]], np.float32)
    reg = region_embeddings(tr, users, pool="sum")
    assert reg.keys.tolist() == [1001, 2002, 3003]
    # By hand: (1,1) <- persons 0 and 1 (0 once although twice there); (2,2) <- 0 and 2; (3,3) <- 2.
    np.testing.assert_allclose(reg.vectors, [[3, 30], [5, 50], [4, 40]])
    assert reg.n_visitors.tolist() == [2, 2, 1]
    mean = region_embeddings(tr, users, pool="mean")
    np.testing.assert_allclose(mean.vectors, [[1.5, 15], [2.5, 25], [4, 40]])
    write_regions(tmp_path, reg)
    back = read_regions_csv(tmp_path / "regions.csv")
    np.testing.assert_allclose(back.vectors, reg.vectors)
    assert not (tmp_path / "region_embeddings.csv").exists()  # HuMob cells are not mesh codes


def test_mesh_levels_and_area2vec_form(commute, tmp_path):
    from core.area2vec.embeddings import read_embeddings_csv

    tr = trajectories_from_frame(commute, "stays.csv")
    rng = np.random.default_rng(0)
    users = rng.normal(size=(tr.n_users, 3)).astype(np.float32)
    fine = region_embeddings(tr, users, "250m")
    coarse = region_embeddings(tr, users, "1km")
    assert (fine.mesh_sizes == 250).all() and (coarse.mesh_sizes == 1000).all()
    assert len(coarse.keys) < len(fine.keys)
    # Each person has one home and one work place: visits per person = 2 regions (jitter stays inside cells mostly).
    assert fine.n_visitors.sum() >= 2 * tr.n_users
    # Hand check at 1 km: the sum over the people with a record in that mesh.
    from core.geo.meshcode import latlon_to_code

    codes = latlon_to_code(tr.u, tr.v, 1000)
    k = coarse.keys[np.argmax(coarse.n_visitors)]
    who = np.unique(tr.uid[codes == k])
    np.testing.assert_allclose(coarse.vectors[np.argmax(coarse.n_visitors)], users[who].sum(axis=0), rtol=1e-5)
    write_regions(tmp_path, coarse)
    emb = read_embeddings_csv(tmp_path / "region_embeddings.csv")
    assert emb.key_column == "code" and emb.vectors.shape == (len(coarse.keys), 3)
    assert (emb.mesh_sizes == 1000).all()
