import numpy as np

from core.meshcode import latlon_to_code
from core.release import write_dataset


def _release(tmp_path):
    rng = np.random.default_rng(0)
    codes = np.unique(latlon_to_code(35.17 + rng.random(300) * 0.01, 136.9 + rng.random(300) * 0.01, 50))
    n = len(codes)
    labels = {5: np.arange(n) % 5, 10: np.arange(n) % 10, 20: np.arange(n) % 20}
    comp = np.arange(n) % 7 == 0
    write_dataset(tmp_path / "rel", "nagoya_2019_04", codes, np.full(n, 50), rng.normal(size=(n, 8)), rng.normal(size=(168, 8)), labels, comp)
    return n, labels, comp


def test_view_shows_clusters_and_counts(tmp_path):
    from dashboard.callbacks import view
    from dashboard.data import Catalog

    n, labels, comp = _release(tmp_path)
    cat = Catalog(tmp_path)
    assert cat.keys() == ["rel/nagoya_2019_04"]
    fig, summary = view(cat, "rel/nagoya_2019_04", 5)
    assert [t.name for t in fig.data] == [f"cluster {c} ({int((labels[5] == c).sum()):,})" for c in range(5)]
    assert sum(len(t.x) for t in fig.data) == n
    assert summary.startswith(f"nagoya 2019-04: {n:,} meshes") and f"{int(comp.sum()):,} complemented" in summary
    # a k that the release does not hold is computed on the fly
    fig7, _ = view(cat, "rel/nagoya_2019_04", 7)
    assert len(fig7.data) == 7 and sum(len(t.x) for t in fig7.data) == n


def test_create_app_lists_datasets(tmp_path):
    import app as app_module

    _release(tmp_path)
    dash_app = app_module.create_app(tmp_path)
    dropdown = dash_app.layout.children[1].children[0].children[1]
    assert dropdown.options == ["rel/nagoya_2019_04"] and dropdown.value == "rel/nagoya_2019_04"
