"""Real releases in every documented variant: the paper's property names, .pt files, any dataset stem."""

import json

import numpy as np

from core.geo.meshcode import code_bounds, latlon_to_code
from core.release.layout import city_from_codes, discover, read_dataset


def _paper_style_release(root, stem="2021"):
    """A dataset as the paper names things: geocode, cluster5/10/20, model/<stem>.pt."""
    import torch

    rng = np.random.default_rng(0)
    codes = np.unique(latlon_to_code(35.15 + rng.random(60) * 0.05, 136.88 + rng.random(60) * 0.05, 50))
    s, w, n, e = code_bounds(codes, np.full(len(codes), 50))
    feats = []
    vec = rng.normal(size=(len(codes), 8))
    for i, c in enumerate(codes):
        props = {
            "geocode": str(c),
            "vector": vec[i].tolist(),
            "cluster5": int(i % 5),
            "cluster10": int(i % 10),
            "cluster20": int(i % 20),
        }
        props |= {"Latitude": float((s[i] + n[i]) / 2), "Longitude": float((w[i] + e[i]) / 2)}
        ring = [[w[i], s[i]], [w[i], n[i]], [e[i], n[i]], [e[i], s[i]], [w[i], s[i]]]
        feats.append({"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [ring]}})
    city = root / "openuas" / "japan_city"
    (city / "geojson").mkdir(parents=True)
    (city / "model").mkdir()
    (city / "geojson" / f"{stem}.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    state = {"embedding.weight": torch.tensor(vec, dtype=torch.float32), "decode_linear.weight": torch.zeros(168, 8)}
    torch.save(state, city / "model" / f"{stem}.pt")
    return codes, vec


def test_a_release_with_the_papers_names_and_a_2021_stem_reads_as_nagoya_2021(tmp_path):
    codes, vec = _paper_style_release(tmp_path)
    (ref,) = discover(tmp_path)
    assert ref.name == "2021" and ref.model is not None and ref.model.suffix == ".pt"
    ds = read_dataset(ref)
    assert np.array_equal(np.sort(ds.codes), np.sort(codes)) and np.allclose(ds.vectors, vec, atol=1e-6)
    assert set(ds.labels) == {5, 10, 20} and ds.labels[10].max() == 9
    assert (ds.city, ds.period) == ("nagoya", "2021")
    assert ds.decoder is not None and ds.decoder.shape == (168, 8)
    from dashboard.catalog import Catalog

    (opt,) = Catalog(tmp_path).options()
    assert opt["label"] == "openuas / 2021 (nagoya 2021)"


def test_the_city_of_meshes_far_from_every_known_city_is_their_position():
    far = latlon_to_code(np.array([26.21]), np.array([127.68]), 50)  # Naha
    assert city_from_codes(far, np.array([50])) == "26.21N 127.68E"
    kyoto = latlon_to_code(np.array([35.01]), np.array([135.77]), 50)
    assert city_from_codes(kyoto, np.array([50])) == "kyoto"  # shares first-level mesh 5235 with Osaka
