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


# ---------------------------------------------------------------- stays without a person (issue 17, defect 2)


def stays_with_blank_user_ids(blank):
    """10 real people and some anonymous stays in one 50 m mesh: 10 people is not MORE than 10."""
    import pandas as pd

    lat, lon = centre(0, 0)
    n = 14
    return pd.DataFrame(
        {
            "user_id": [f"p{i}" for i in range(10)] + [blank] * 4,
            "stay_time": 30,
            "day_of_week": "Monday",
            "arrival_time": "09:00",
            "is_holiday": False,
            "lat": np.full(n, lat),
            "lon": np.full(n, lon),
        }
    )


import pytest  # noqa: E402

from core.errors import InputError  # noqa: E402
from core.mobility.privacy import apply_privacy, missing_people  # noqa: E402


@pytest.mark.parametrize("blank", ["", "  ", None, np.nan])
def test_blank_user_id_is_never_a_person(blank):
    table, report = apply_privacy(stays_with_blank_user_ids(blank), min_users=10)
    assert len(table) == 0  # 10 real people: the mesh is not published
    assert report["stays_without_person"] == 4 and report["meshes_50m"] == 0 and report["meshes_250m"] == 0


def test_blank_user_ids_not_counted_by_assign_meshes():
    lat, lon = centre(0, 0)
    user = np.array([f"p{i}" for i in range(10)] + ["", None, "   "], dtype=object)
    res = assign_meshes(user, np.full(13, lat), np.full(13, lon), 9)  # more than 9: the 10 real people pass
    assert (res.code[:10] >= 0).all() and (res.code[10:] == -1).all()
    assert res.users_per_mesh.to_list() == [10]


def test_missing_people_masks():
    assert missing_people(np.array(["a", "", " ", None], dtype=object)).tolist() == [False, True, True, True]
    assert missing_people(np.array([1.0, np.nan])).tolist() == [False, True]
    assert missing_people(np.array([0, 3, -1])).tolist() == [False, False, True]


@pytest.mark.parametrize("bad", [0, -5, "ten", 2.5])
def test_threshold_below_one_refused(bad):
    lat, lon = centre(0, 0)
    with pytest.raises(InputError, match="privacy threshold"):
        assign_meshes(np.arange(3), np.full(3, lat), np.full(3, lon), bad)


@pytest.mark.parametrize(
    ("column", "value"),
    [("stay_time", -30), ("day_of_week", "Funday"), ("arrival_time", "25:10"), ("is_holiday", "maybe")],
)
def test_apply_privacy_validates_stay_columns(column, value):
    stays = stays_with_blank_user_ids("x")
    stays[column] = stays[column].astype(object)
    stays.loc[2, column] = value
    with pytest.raises(InputError, match=column) as err:
        apply_privacy(stays, source="stays.csv")
    assert "row 3" in str(err.value)
