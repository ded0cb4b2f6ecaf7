"""Joint clusters of a shared space, their names, their storage, and the data-driven change flag."""

import json
import math

import numpy as np
import pytest

from core.analysis.diff import change_threshold
from core.analysis.joint import JointClusters, SpacePart, fit_joint, from_released
from core.analysis.naming import name_clusters, name_pattern
from core.errors import InputError, ParameterError, ReleaseError
from core.release.clusters import clusters_file, load_joint, rename_cluster, save_joint


def token_distribution(day: int, hours: tuple[int, ...], duration: int, weight: float = 1.0) -> np.ndarray:
    """A 168-token distribution: day type ``day``, arrivals in the given hours, one duration class."""
    f = np.zeros((2, 12, 7))
    for h in hours:
        f[day, h // 2, duration] += weight
    return f.ravel() / f.sum()


def test_names_follow_the_documented_rules():
    office = token_distribution(0, (8, 9), 5)
    assert name_pattern(office) == "weekday office hours, 6-12 h"
    # The same stays every day: 5/7 of them on weekdays, 2/7 on weekends -> 50 % per day -> all-week.
    home = 5 / 7 * token_distribution(0, (19, 20), 6) + 2 / 7 * token_distribution(1, (19, 21), 6)
    assert name_pattern(home) == "all-week nights, > 12 h"
    weekend_home = 0.4 * token_distribution(0, (19, 20), 6) + 0.6 * token_distribution(1, (19, 21), 6)
    assert name_pattern(weekend_home) == "weekend nights, > 12 h"  # per day 0.08 vs 0.30: 79 % weekend
    outing = token_distribution(1, (14, 15), 2)
    assert name_pattern(outing) == "weekend afternoons, 1-2 h"
    assert name_pattern(token_distribution(0, (12,), 0)) == "weekday middays, < 30 min"


def test_names_are_unique_within_a_clustering():
    a = 0.7 * token_distribution(0, (14,), 2) + 0.3 * token_distribution(0, (14,), 3)
    b = 0.7 * token_distribution(0, (15,), 2) + 0.3 * token_distribution(0, (15,), 1)
    names = name_clusters(np.vstack([a, b, a]))
    assert len(set(names)) == 3
    assert (
        names[0].startswith("weekday afternoons, 1-2 h (also 2-4 h)") and names[1] == "weekday afternoons, 1-2 h (also 30-60 min)"
    )
    assert name_clusters(np.vstack([a, np.zeros(168)]))[1] == "empty cluster 1"


def test_clusters_sharing_a_name_are_told_apart_by_the_feature_that_differs():
    # Two "all-week nights, 6-12 h" patterns, the same durations and hours: one has more weekend stays.
    def home(weekend_weight: float) -> np.ndarray:
        return (1 - weekend_weight) * token_distribution(0, (20,), 5) + weekend_weight * token_distribution(1, (20,), 5)

    quiet, busy = home(0.25), home(0.35)  # per day: 0.15 vs 0.125 weekday -> 45 % and 57 % weekend
    assert name_pattern(quiet) == name_pattern(busy) == "all-week nights, 6-12 h"
    names = name_clusters(np.vstack([quiet, busy]))
    assert names == ["all-week nights, 6-12 h (45 % weekend)", "all-week nights, 6-12 h (57 % weekend)"]
    # The same nights, one with a second arrival band in the morning, the other in the afternoon.
    morning = 0.8 * home(0.3) + 0.2 * (5 / 7 * token_distribution(0, (8,), 5) + 2 / 7 * token_distribution(1, (8,), 5))
    afternoon = 0.8 * home(0.3) + 0.2 * (5 / 7 * token_distribution(0, (16,), 5) + 2 / 7 * token_distribution(1, (16,), 5))
    names = name_clusters(np.vstack([morning, afternoon]))
    assert names[0].endswith("(also mornings)") and names[1].endswith("(also afternoons)"), names
    # Long stays: the share over 12 h tells them apart before the second duration does (both "also > 12 h").
    a = 0.6 * token_distribution(0, (20,), 5) + 0.4 * token_distribution(0, (20,), 6)
    b = 0.7 * token_distribution(0, (20,), 5) + 0.3 * token_distribution(0, (20,), 6)
    c = 0.7 * token_distribution(0, (20,), 5) + 0.3 * token_distribution(0, (20,), 3)
    names = name_clusters(np.vstack([a, b, c]))
    assert names == [
        "weekday nights, 6-12 h (40 % over 12 h)",
        "weekday nights, 6-12 h (30 % over 12 h)",
        "weekday nights, 6-12 h (0 % over 12 h)",
    ]
    # A second arrival band holding under 5 % of the stays is not claimed: "only".
    office = token_distribution(0, (8,), 5)
    late = 0.5 * token_distribution(0, (8,), 5) + 0.5 * token_distribution(0, (10,), 5)
    assert name_clusters(np.vstack([office, late])) == [
        "weekday office hours, 6-12 h (only mornings)",
        "weekday office hours, 6-12 h (also middays)",
    ]


def test_only_indistinguishable_patterns_are_numbered():
    a = token_distribution(0, (14,), 2)
    names = name_clusters(np.vstack([a, a, token_distribution(0, (14,), 3)]))
    assert names == ["weekday afternoons, 1-2 h #1", "weekday afternoons, 1-2 h #2", "weekday afternoons, 2-4 h"]


def _city(rng, centres, n_per, shift):
    types = np.repeat(np.arange(len(centres)), n_per)
    vec = centres[types] + rng.normal(scale=0.15, size=(len(types), centres.shape[1])) + shift
    return vec, types


def test_joint_clusters_mean_the_same_in_every_dataset():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(6, 8))
    va, ta = _city(rng, centres, 120, 0.0)
    vb, tb = _city(rng, centres, 80, 0.1)  # another city: slightly shifted, as anchoring leaves it
    jc = fit_joint({"a": SpacePart(va), "b": SpacePart(vb)}, 6, space="s", seed=1)
    la, lb = jc.assign(va), jc.assign(vb)
    # The type -> cluster map learned in city a applies unchanged to city b.
    mapping = {t: np.bincount(la[ta == t]).argmax() for t in range(6)}
    assert np.mean(np.array([mapping[t] for t in tb]) == lb) == 1.0
    # A dataset added later is assigned, not re-clustered, and lands in the same clusters.
    vc, tc = _city(rng, centres, 30, -0.1)
    lc = jc.assign(vc)
    assert np.mean(np.array([mapping[t] for t in tc]) == lc) == 1.0
    assert sorted(jc.sizes) == sorted([200] * 6) and jc.datasets == ["a", "b"]


def test_complemented_meshes_take_their_parents_label_and_stay_out_of_the_fit():
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=3.0, size=(3, 8))
    v, _ = _city(rng, centres, 50, 0.0)
    comp = np.zeros(len(v), bool)
    v = np.vstack([v, np.repeat(v[:1], 40, axis=0)])  # 40 children of mesh 0, complemented
    comp = np.concatenate([comp, np.ones(40, bool)])
    jc = fit_joint({"a": SpacePart(v, complemented=comp)}, 3, space="s")
    assert sum(jc.sizes) == 150
    labels = jc.assign(v)
    assert (labels[150:] == labels[0]).all()


def test_bad_k_is_a_parameter_error():
    v = np.random.default_rng(2).normal(size=(5, 8))
    for k in (0, 1, 6):
        with pytest.raises(ParameterError, match="number of clusters"):
            fit_joint({"a": SpacePart(v)}, k, space="s")


def test_released_labels_are_kept_and_their_centres_assign_them_back():
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=4.0, size=(4, 8))
    v, t = _city(rng, centres, 40, 0.0)
    released = (t + 1) % 4  # the release's own numbering
    jc = from_released({"a": SpacePart(v, labels=released)}, 4, space="r")
    assert jc.source == "released"
    assert np.allclose(jc.centroids[1], v[released == 1].mean(axis=0))
    assert np.array_equal(jc.assign(v), released)


def test_clusters_file_round_trip_rename_and_bad_files(tmp_path):
    rng = np.random.default_rng(4)
    jc = fit_joint({"a": SpacePart(rng.normal(size=(60, 8)))}, 3, space="demo")
    path = save_joint(clusters_file(tmp_path, 3), jc)
    assert path == tmp_path / "clusters" / "k3.json"
    back = load_joint(path)
    assert back is not None and np.allclose(back.centroids, jc.centroids, atol=1e-6) and back.names == jc.names
    renamed = rename_cluster(path, 2, "  station area ")
    assert load_joint(path).name(2) == "station area" == renamed.display_names()[2]
    rename_cluster(path, 2, "")
    assert load_joint(path).name(2) == jc.names[2]
    with pytest.raises(InputError):
        rename_cluster(path, 3, "x")
    with pytest.raises(InputError):
        rename_cluster(path, 0, "x" * 61)
    assert load_joint(tmp_path / "nope.json") is None
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"k": 3, "centroids": [[0.0]], "names": ["a"], "space": "s"}))
    with pytest.raises(ReleaseError):
        load_joint(bad)
    assert isinstance(JointClusters.from_dict(jc.to_dict()), JointClusters)


def test_change_threshold_separates_changes_from_training_noise():
    rng = np.random.default_rng(5)
    noise = np.exp(rng.normal(np.log(0.004), 0.5, size=3000))  # two trainings of unchanged meshes
    changed = np.exp(rng.normal(np.log(0.15), 0.4, size=150))  # a designed change
    x = np.concatenate([noise, changed])
    thr = change_threshold(x)
    flagged = x > thr
    truth = np.r_[np.zeros(3000, bool), np.ones(150, bool)]
    precision = (flagged & truth).sum() / flagged.sum()
    recall = (flagged & truth).sum() / truth.sum()
    assert precision >= 0.95 and recall >= 0.95
    # The same rule on a city whose noise is ten times larger moves its threshold with it.
    assert change_threshold(x * 10) == pytest.approx(thr * 10, rel=1e-9)


def _precision_recall(x: np.ndarray, truth: np.ndarray, thr: float) -> tuple[float, float]:
    flagged = x > thr
    return (flagged & truth).sum() / max(flagged.sum(), 1), (flagged & truth).sum() / truth.sum()


@pytest.mark.parametrize("seed", range(3))
def test_change_threshold_when_most_meshes_of_a_small_city_changed(seed):
    """The quick demo's Nagoya: 320 meshes, two thirds of them in the districts the pandemic changed.
    The changes are the heaviest group; the noise is still the lowest one."""
    rng = np.random.default_rng(seed)
    noise = np.exp(rng.normal(np.log(0.012), 0.6, size=100))
    changed = np.exp(rng.normal(np.log(0.07), 0.45, size=220))
    x = np.concatenate([noise, changed])
    precision, recall = _precision_recall(x, np.r_[np.zeros(100, bool), np.ones(220, bool)], change_threshold(x))
    assert precision >= 0.88 and recall >= 0.9


@pytest.mark.parametrize("seed", range(3))
def test_change_threshold_flags_nothing_in_noise_alone_and_a_few_far_changes(seed):
    rng = np.random.default_rng(seed)
    noise = np.exp(rng.normal(np.log(0.015), 0.7, size=2900))
    assert change_threshold(noise) == float("inf")  # one group: nothing flagged
    far = np.exp(rng.normal(np.log(0.65), 0.02, size=42))  # 1.4 % of the meshes, far above the noise
    x = np.concatenate([noise, far])
    precision, recall = _precision_recall(x, np.r_[np.zeros(2900, bool), np.ones(42, bool)], change_threshold(x))
    assert precision >= 0.95 and recall >= 0.95
    assert change_threshold(x[:29]) == float("inf")  # too few meshes to tell


@pytest.mark.parametrize("seed", range(3))
def test_change_threshold_a_thin_low_tail_is_not_the_noise(seed):
    """Two trainings of a near-normal period: the noise, a thin tail of near-identical patterns far below it
    (a mixture component of its own, 8 % of the meshes) and 41 real changes. Only the changes are flagged."""
    rng = np.random.default_rng(seed)
    noise = np.exp(rng.normal(np.log(0.015), 0.5, size=2600))
    tail = np.exp(rng.normal(np.log(0.003), 1.2, size=230))
    far = np.exp(rng.normal(np.log(0.65), 0.02, size=41))
    x = np.concatenate([noise, tail, far])
    precision, recall = _precision_recall(x, np.r_[np.zeros(2830, bool), np.ones(41, bool)], change_threshold(x))
    assert precision >= 0.95 and recall >= 0.95


def test_change_rule_says_why_nothing_is_flagged_and_where_it_would_split():
    from core.analysis.diff import change_rule

    rng = np.random.default_rng(4)
    assert "too few compared meshes (29; the rule needs 30)" in change_rule(rng.random(29)).reason
    one = change_rule(np.exp(rng.normal(np.log(0.015), 0.7, size=2900)))
    assert one.threshold == float("inf") and "form one group" in one.reason and np.isnan(one.split)
    # The quick demo of some seeds: the changes (2/3 of the meshes) only 2.5x the noise, which is larger there.
    noise = np.exp(rng.normal(np.log(0.03), 0.7, size=110))
    changed = np.exp(rng.normal(np.log(0.075), 0.45, size=280))
    close = change_rule(np.concatenate([noise, changed]))
    assert close.threshold == float("inf") and "a distinct group sits 3x above it" in close.reason
    assert 1.5 < close.group / close.noise < 3 and f"{math.floor(close.group / close.noise * 10) / 10}x" in close.reason
    assert close.noise < close.split < close.group  # the split lies between the two groups
    near = change_rule(np.concatenate([noise, changed / 2]))  # only 1.2x the noise: no split to offer
    assert near.threshold == float("inf") and np.isnan(near.split)
    found = change_rule(np.concatenate([noise / 3, changed]))  # the same changes 7.5x above a smaller noise
    assert np.isfinite(found.threshold) and found.reason == "" and found.split == found.threshold
