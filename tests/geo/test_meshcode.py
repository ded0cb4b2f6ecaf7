import numpy as np
import pytest

from core.geo import meshcode as mc


def test_known_codes_by_hand():
    # Nagoya station 35.170915 N, 136.881537 E: lat*1.5 = 52.76 -> 52, lon-100 -> 36;
    # 2nd: (35.170915 - 34.666667) / (5/60) = 6.05 -> 6, 0.881537 / 0.125 = 7.05 -> 7;
    # 3rd: 0.51 -> 0, 0.52 -> 0; 500 m: north-east -> 4; 250 m: south-west -> 1;
    # 100 m: 5, 5; 50 m: south-west -> 0, 0.
    lat, lon = 35.170915, 136.881537
    assert mc.latlon_to_code(lat, lon, 1000) == 52366700
    assert mc.latlon_to_code(lat, lon, 500) == 523667004
    assert mc.latlon_to_code(lat, lon, 250) == 5236670041
    assert mc.latlon_to_code(lat, lon, 100) == 5236670055
    assert mc.latlon_to_code(lat, lon, 50) == 523667005500


def test_first_level_boundary_at_34_40():
    # 34 deg 40 min = 34.666...: the Kobe venue (34.6660) is south of it, 34.6670 north.
    codes = mc.latlon_to_code(np.array([34.6660, 34.6670]), np.array([135.213, 135.213]), 250)
    assert (codes // 10**6).tolist() == [5135, 5235]


@pytest.mark.parametrize("size", [1000, 500, 250, 100, 50])
def test_round_trips(size):
    rng = np.random.default_rng(size)
    lat = rng.uniform(24, 45, 20000)
    lon = rng.uniform(123, 146, 20000)
    codes = mc.latlon_to_code(lat, lon, size)
    s, w, n, e = mc.code_bounds(codes, size)
    assert ((s <= lat) & (lat < n) & (w <= lon) & (lon < e)).all()
    # the cell's own south-west corner and centre map back to the same code
    assert (mc.latlon_to_code(s, w, size) == codes).all()
    clat, clon = mc.code_centers(codes, size)
    assert (mc.latlon_to_code(clat, clon, size) == codes).all()
    # extents: 50 m cell = 1.5" x 2.25"
    assert np.allclose(n - s, mc.EXTENT[size] * 1.5 / 3600)
    assert np.allclose(e - w, mc.EXTENT[size] * 2.25 / 3600)


def test_parent_of_50m_is_enclosing_250m():
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(34, 36, 5000), rng.uniform(135, 137, 5000)
    c50 = mc.latlon_to_code(lat, lon, 50)
    assert (mc.parent_code(c50, 50, 250) == mc.latlon_to_code(lat, lon, 250)).all()


def test_sizes_from_digits_and_malformed_codes():
    assert mc.infer_sizes(np.array([52366700, 523667004, 5236670041, 523667005500, 12345])).tolist() == [1000, 500, 250, 50, -1]
    bad = mc.invalid_codes(np.array([5236670041, 5236670051, 5236870041, 523667005520]), np.array([250, 250, 250, 50]))
    assert bad.tolist() == [False, True, True, True]
    with pytest.raises(ValueError, match="malformed"):
        mc.code_bounds(np.array([5236670051]))
