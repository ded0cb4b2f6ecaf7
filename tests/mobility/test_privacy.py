import numpy as np

from core.geo.meshcode import latlon_to_code
from core.mobility.privacy import assign_meshes, complemented_children

# A 250 m mesh is 5 x 5 cells of 50 m; pick a 250 m mesh's south-west 50 m cell.
I0, J0 = 84410, 58880  # i % 5 == 0 and j % 5 == 0


def centre(di, dj):
    return (I0 + di + 0.5) / 2400, 100 + (J0 + dj + 0.5) / 1600


def test_rule_by_hand():
    a_lat, a_lon = centre(0, 0)  # 11 users: kept at 50 m
    b_lat, b_lon = centre(1, 0)  # 6 users \  together 12 users in the same 250 m mesh: kept at 250 m
    c_lat, c_lon = centre(2, 3)  # 6 users /
    d_lat, d_lon = centre(40, 40)  # 10 users: dropped (not MORE than 10), and its 250 m has only them
    user = np.r_[np.arange(11), 100 + np.arange(6), 200 + np.arange(6), 300 + np.arange(10), 0, 0]
    lat = np.r_[np.full(11, a_lat), np.full(6, b_lat), np.full(6, c_lat), np.full(10, d_lat), b_lat, b_lat]
    lon = np.r_[np.full(11, a_lon), np.full(6, b_lon), np.full(6, c_lon), np.full(10, d_lon), b_lon, b_lon]
    res = assign_meshes(user, lat, lon)
    c50 = latlon_to_code(a_lat, a_lon, 50)
    c250 = latlon_to_code(b_lat, b_lon, 250)
    assert (res.code[:11] == c50).all() and (res.mesh_size[:11] == 50).all()
    assert (res.code[11:23] == c250).all() and (res.mesh_size[11:23] == 250).all()
    assert (res.code[23:33] == -1).all()
    # user 0 stays twice more in cell b: still 6 + 6 + ... distinct users of the 250 m rest = 13
    assert res.users_per_mesh.to_dict() == {int(c50): 11, int(c250): 13}
    assert latlon_to_code(a_lat, a_lon, 250) == c250  # the 50 m mesh lies inside the 250 m one


def test_complemented_children_skip_kept_50m():
    a = latlon_to_code(*centre(0, 0), 50)
    parent = latlon_to_code(*centre(0, 0), 250)
    child, row = complemented_children(np.array([a, parent]), np.array([50, 250]))
    assert len(child) == 24 and (row == 1).all() and a not in child
    assert (latlon_to_code(*centre(4, 4), 50) == child).any()


def test_no_kept_mesh_has_ten_or_fewer_users():
    rng = np.random.default_rng(0)
    n = 50_000
    user = rng.integers(0, 3000, n)
    lat = 35.17 + rng.normal(0, 0.004, n)
    lon = 136.90 + rng.normal(0, 0.005, n)
    res = assign_meshes(user, lat, lon)
    kept = res.code >= 0
    import pandas as pd

    users = pd.DataFrame({"c": res.code[kept], "u": user[kept]}).drop_duplicates()["c"].value_counts()
    assert users.min() > 10 and kept.sum() > 0.5 * n
    assert set(users.index) == set(res.users_per_mesh.index)
