import numpy as np
import pandas as pd
import pytest

from core.area2vec.anchors import AnchorSet, build_anchor_set, quantise, read_anchor_set
from core.area2vec.tokens import make_tokens
from core.errors import CoreError, InputError, ReleaseError
from core.mobility.stays import stays_from_frame
from core.release.layout import discover, read_dataset, write_dataset
from core.simulation.synthetic import synthetic_city


def test_quantise_keeps_tokens():
    stay = np.arange(0, 1500, dtype=np.float64)
    arrival = np.arange(1500) % 1440
    q_stay, q_arr = quantise(stay, arrival)
    assert (q_stay % 15 == 0).all() and (q_arr % 15 == 0).all()
    wd = np.arange(1500) % 7
    hol = np.zeros(1500, bool)
    assert (make_tokens(stay, arrival, wd, hol) == make_tokens(q_stay, q_arr, wd, hol)).all()


def test_anchor_set_round_trip(small_anchor_set, tmp_path):
    a = small_anchor_set
    assert a.n_anchors == 64 and a.counts.sum() == 64 * 2000
    recs = a.records
    assert (recs["stay_time"] % 15 == 0).all() and recs["arrival_time"].str.match(r"^\d\d:[0134][05]$").all()
    a.save(tmp_path / "anchor_data")
    b = read_anchor_set(tmp_path / "anchor_data")
    assert np.array_equal(a.embeddings, b.embeddings) and np.array_equal(a.counts, b.counts)


def test_single_anchor_is_refused(tmp_path):
    with pytest.raises(CoreError, match="at least 2 anchors"):
        AnchorSet(np.ones((1, 168)), np.zeros((1, 8)))
    recs = stays_from_frame(synthetic_city(50, 60, seed=1).stays)
    with pytest.raises(CoreError, match="at least 2 anchors"):
        build_anchor_set([recs], n_anchors=1)
    with pytest.raises(CoreError, match="need at least as many areas"):
        build_anchor_set([recs], n_anchors=51)


def test_anchor_ids_must_match_embeddings(small_anchor_set, tmp_path):
    import torch

    small_anchor_set.save(tmp_path / "a")
    torch.save(torch.zeros(5, 8), tmp_path / "a" / "anchor_embeddings.pth")
    with pytest.raises(InputError, match="64 distinct anchor ids but anchor_embeddings.pth has 5"):
        read_anchor_set(tmp_path / "a")


def test_release_round_trip_and_cache(tmp_path):
    rng = np.random.default_rng(0)
    from core.geo.meshcode import latlon_to_code

    lat, lon = rng.uniform(35.1, 35.2, 40), rng.uniform(136.8, 136.9, 40)
    codes = np.concatenate([latlon_to_code(lat[:30], lon[:30], 50), latlon_to_code(lat[30:], lon[30:], 250)])
    codes, first = np.unique(codes, return_index=True)
    sizes = np.where(codes > 10**11, 50, 250)
    vecs = rng.normal(size=(len(codes), 8)).astype(np.float32)
    dec = rng.normal(size=(168, 8)).astype(np.float32)
    labels = {5: rng.integers(0, 5, len(codes)), 10: rng.integers(0, 10, len(codes))}
    comp = rng.random(len(codes)) < 0.2
    root = tmp_path / "data" / "myrel"
    write_dataset(root, "nagoya_2019_04", codes, sizes, vecs, dec, labels, comp)
    refs = discover(tmp_path / "data")
    assert [(r.release, r.name) for r in refs] == [("myrel", "nagoya_2019_04")]
    cache = tmp_path / "cache"
    for _ in range(2):  # first from GeoJSON, then from the cache
        ds = read_dataset(refs[0], cache_dir=cache)
        assert np.array_equal(ds.codes, codes) and np.array_equal(ds.mesh_sizes, sizes)
        assert np.allclose(ds.vectors, vecs, rtol=1e-6, atol=1e-6)
        assert np.array_equal(ds.labels[5], labels[5]) and np.array_equal(ds.complemented, comp)
        assert np.allclose(ds.decoder, dec)
        assert (ds.city, ds.period) == ("nagoya", "2019-04")
    assert len(list(cache.glob("*.npz"))) == 1


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden"])
def test_dataset_names_are_validated(tmp_path, name):
    with pytest.raises(ReleaseError, match="not allowed"):
        write_dataset(tmp_path, name, np.array([5236670041]), np.array([250]), np.zeros((1, 8)), np.zeros((168, 8)), {})
    assert not any(tmp_path.rglob("*.geojson"))


def test_anchor_set_from_a_sample_of_stays_with_full_counts():
    from core.simulation.demo import _sample

    recs = [stays_from_frame(synthetic_city(300, 100, seed=s).stays) for s in (1, 2)]
    full = [r.to_counts() for r in recs]
    sampled = [_sample(r, 5000, 0) for r in recs]
    assert all(len(s) == 5000 for s in sampled)
    a = build_anchor_set(sampled, n_anchors=8, records_per_anchor=300, seed=0, counts=full)
    assert a.n_anchors == 8 and a.counts.sum() == 8 * 300
    with pytest.raises(CoreError, match="one entry per dataset"):
        build_anchor_set(sampled, n_anchors=8, counts=full[:1])


def _group_stays(mesh_ids, n_stays, weekday, hour, minutes, seed):
    rng = np.random.default_rng(seed)
    mesh = np.repeat(mesh_ids, n_stays)
    n = len(mesh)
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"] if weekday else ["Saturday", "Sunday"]
    return pd.DataFrame(
        {
            "stay_time": rng.integers(minutes[0], minutes[1], n),
            "day_of_week": rng.choice(days, n),
            "arrival_time": [
                f"{h:02d}:{m:02d}" for h, m in zip(rng.integers(hour, hour + 2, n), rng.integers(0, 60, n), strict=True)
            ],
            "is_holiday": False,
            "mesh_id": mesh,
        }
    )


def test_an_area_cluster_without_sampled_records_gets_no_empty_anchor():
    """With sampled records (as the demo's), an isolated area may have counts but no record: the old
    builder clustered it alone and stopped with 'k-means left an anchor without records'."""
    groups = [
        _group_stays(np.arange(0, 20), 60, True, 8, (480, 600), 1),  # office days
        _group_stays(np.arange(20, 40), 60, True, 19, (800, 900), 2),  # nights at home
        _group_stays(np.arange(40, 60), 60, False, 14, (60, 110), 3),  # weekend outings
    ]
    outlier = _group_stays(np.array([60]), 60, True, 3, (5, 20), 4)  # 03:00, a few minutes: far from all
    full = stays_from_frame(pd.concat([*groups, outlier], ignore_index=True))
    sampled = stays_from_frame(pd.concat(groups, ignore_index=True))  # the outlier's stays were not sampled
    a = build_anchor_set([sampled], n_anchors=4, records_per_anchor=50, seed=0, counts=[full.to_counts()])
    assert a.n_anchors == 4 and (a.counts.sum(axis=1) == 50).all()
    assert np.isfinite(a.embeddings).all()
    with pytest.raises(CoreError, match="areas with records"):
        build_anchor_set([sampled], n_anchors=61, records_per_anchor=5, seed=0, counts=[full.to_counts()])
