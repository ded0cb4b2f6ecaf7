"""Your datasets as objects: rename and delete (atomic, only your own, names checked), their card, import warnings."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from core.release.layout import discover, read_dataset
from core.release.spaces import joint_clusters, spaces_of
from core.workflow.jobs import JobRegistry
from core.workflow.userdata import (
    USER_RELEASE,
    DatasetRefused,
    cleanup_incomplete,
    delete_dataset,
    describe_dataset,
    input_warnings,
    read_metrics,
    rename_dataset,
    write_user_dataset,
)


def _user_names(data: Path) -> set[str]:
    return {r.name for r in discover(data) if r.release == USER_RELEASE}


@pytest.fixture
def with_user(data_copy) -> Path:
    """The tiny demo plus one free user dataset (with its own stored clusters) and one anchored-looking record."""
    ds = read_dataset(next(r for r in discover(data_copy) if r.name == "osaka_2021_04"))
    own = ~ds.complemented
    root = data_copy / USER_RELEASE
    metrics = {"anchored": False, "n_meshes": int(own.sum()), "period": "2016-10b", "name": "kobe_2016-10b", "warnings": []}
    write_user_dataset(root, "kobe_2016-10b", ds.codes[own], ds.mesh_sizes[own], ds.vectors[own], ds.decoder, metrics)
    # Its own clusters at k = 5, stored with the release as the app stores them when it first shows them.
    refs = {f"{r.release}/{r.name}": r for r in discover(data_copy)}
    spaces = spaces_of(refs, lambda k: read_metrics(refs[k].geojson) if k.startswith("user/") else None)
    joint_clusters(spaces["user/kobe_2016-10b"], 5, lambda k: read_dataset(refs[k]))
    return data_copy


def test_rename_moves_every_file_and_keeps_the_dataset_whole(with_user):
    root = with_user / USER_RELEASE
    before = read_dataset(next(r for r in discover(with_user) if r.name == "kobe_2016-10b"))
    clusters = root / "clusters" / "free-kobe_2016-10b"
    assert clusters.is_dir()  # a free dataset's own clusters, stored when it was labelled
    assert rename_dataset(with_user, "user/kobe_2016-10b", "kobe_2016-10c") == "user/kobe_2016-10c"
    assert _user_names(with_user) == {"kobe_2016-10c"}
    after = read_dataset(next(r for r in discover(with_user) if r.name == "kobe_2016-10c"))
    np.testing.assert_array_equal(before.codes, after.codes)
    np.testing.assert_array_equal(before.vectors, after.vectors)
    assert after.decoder is not None  # the model followed
    m = json.loads((root / "japan_city" / "metrics" / "kobe_2016-10c.json").read_text())
    assert m["dataset"] == "user/kobe_2016-10c" and m["renamed_from"] == ["kobe_2016-10b"]
    assert not clusters.exists()
    stored = json.loads(next((root / "clusters" / "free-kobe_2016-10c").glob("k*.json")).read_text())
    assert stored["space"] == "free:user/kobe_2016-10c"  # the clusters (and names users gave them) follow
    leftovers = [p.name for p in (root / "japan_city").rglob("*") if "kobe_2016-10b" in p.name or p.name.startswith(".")]
    assert leftovers == []


def test_a_reader_sees_the_old_or_the_new_dataset_never_both(with_user):
    seen: list[set[str]] = []
    stop, looked = threading.Event(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(_user_names(with_user))
            looked.set()

    t = threading.Thread(target=watch)
    t.start()
    # The watcher looks at least once before the renames start (a thread scheduled late could otherwise
    # see only the short windows between the two renames of the GeoJSON, and the checks below nothing).
    assert looked.wait(30)
    try:
        for i in range(20):
            rename_dataset(
                with_user, f"user/{'kobe_2016-10b' if i % 2 == 0 else 'renamed'}", "renamed" if i % 2 == 0 else "kobe_2016-10b"
            )
    finally:
        stop.set()
        t.join()
    # A dataset is its GeoJSON: at each moment exactly one name, or (between the two renames of the GeoJSON) none visible yet.
    assert all(len(s) <= 1 and s <= {"kobe_2016-10b", "renamed"} for s in seen), {frozenset(s) for s in seen}
    assert seen[0] == {"kobe_2016-10b"} and _user_names(with_user) == {"kobe_2016-10b"}


def test_a_rename_killed_halfway_is_finished_by_the_cleanup(with_user):
    city = with_user / USER_RELEASE / "japan_city"
    # The first step of a rename, then a crash: the GeoJSON waits under its hidden name, the model under the old one.
    os.rename(city / "geojson" / "kobe_2016-10b.geojson", city / "geojson" / ".rename~kobe_2016-10b~kobe_x")
    assert _user_names(with_user) == set()
    cleanup_incomplete(with_user / USER_RELEASE)
    assert _user_names(with_user) == {"kobe_x"}
    assert (city / "model" / "kobe_x.pth").is_file() and (city / "metrics" / "kobe_x.json").is_file()
    assert read_dataset(next(r for r in discover(with_user) if r.name == "kobe_x")).decoder is not None


def test_delete_removes_the_dataset_at_once_and_all_its_files(with_user):
    root = with_user / USER_RELEASE
    removed = delete_dataset(with_user, "user/kobe_2016-10b")
    assert set(removed) == {
        "japan_city/geojson/kobe_2016-10b.geojson",
        "japan_city/model/kobe_2016-10b.pth",
        "japan_city/metrics/kobe_2016-10b.json",
    }
    assert _user_names(with_user) == set()
    assert not (root / "clusters" / "free-kobe_2016-10b").exists()
    assert [p for p in root.rglob("*") if "kobe" in p.name] == []
    assert {r.name for r in discover(with_user)} == {"osaka_2021_04"}  # the demo is untouched


def test_a_delete_killed_after_its_first_step_leaves_no_dataset_and_the_cleanup_removes_the_rest(with_user):
    city = with_user / USER_RELEASE / "japan_city"
    os.rename(city / "geojson" / "kobe_2016-10b.geojson", city / "geojson" / ".trash~kobe_2016-10b.geojson~abcd")
    assert _user_names(with_user) == set()
    removed = cleanup_incomplete(with_user / USER_RELEASE)
    assert "japan_city/geojson/.trash~kobe_2016-10b.geojson~abcd" in removed
    assert "japan_city/model/kobe_2016-10b.pth" in removed
    assert [p for p in city.rglob("*") if "kobe" in p.name] == []


@pytest.mark.parametrize(
    "key", ["demo/osaka_2021_04", "osaka_2021_04", "user/../demo/osaka_2021_04", "user/", "", None, "user/a/b"]
)
def test_demo_releases_and_paths_are_refused_server_side(with_user, key):
    files = sorted(p for p in with_user.rglob("*") if p.is_file() and ".cache" not in p.parts and ".jobs" not in p.parts)
    with pytest.raises(DatasetRefused):
        delete_dataset(with_user, key)
    with pytest.raises(DatasetRefused):
        rename_dataset(with_user, key, "fine_name")
    assert sorted(p for p in with_user.rglob("*") if p.is_file() and ".cache" not in p.parts and ".jobs" not in p.parts) == files


@pytest.mark.parametrize("bad", ["../evil", "a/b", "x.geojson", "", "  ", "a~b", "a b", ".hidden", "x" * 62, "..", "a\\b"])
def test_bad_new_names_are_refused(with_user, bad):
    with pytest.raises(DatasetRefused, match="new name"):
        rename_dataset(with_user, "user/kobe_2016-10b", bad)
    assert _user_names(with_user) == {"kobe_2016-10b"}


def test_a_name_that_exists_is_a_clear_error(with_user):
    ds = read_dataset(next(r for r in discover(with_user) if r.name == "kobe_2016-10b"))
    write_user_dataset(with_user / USER_RELEASE, "taken", ds.codes, ds.mesh_sizes, ds.vectors, ds.decoder, {"anchored": False})
    with pytest.raises(DatasetRefused, match="'user/taken' already exists"):
        rename_dataset(with_user, "user/kobe_2016-10b", "taken")
    assert _user_names(with_user) == {"kobe_2016-10b", "taken"}


def test_no_change_while_a_training_job_runs(with_user):
    reg = JobRegistry(with_user / USER_RELEASE)
    reg.start("20260101-000000-abcd", {"name": "x"})  # held by this (living) process
    try:
        with pytest.raises(DatasetRefused, match="training job is running"):
            delete_dataset(with_user, "user/kobe_2016-10b")
    finally:
        reg.finish("20260101-000000-abcd")
    delete_dataset(with_user, "user/kobe_2016-10b")
    assert _user_names(with_user) == set()


def test_the_card_reads_the_stored_record_and_old_records_still_load():
    new = {
        "anchored": True,
        "anchor_release": "demo",
        "n_anchors": 64,
        "schedule": "exponential",
        "source_files": ["user1.csv", "user2.csv"],
        "input": {"kind": "gps", "privacy": {"stays_in": 557, "stays_dropped": 265}},
        "min_users": 10,
        "created": "2026-11-02T10:11:12+0900",
        "n_stays": 292,
        "n_meshes": 5,
        "approximation_loss": 0.01234,
        "epochs": 40,
        "config": {"max_epochs": 800},
        "warnings": ["The privacy rule dropped 48% of the stays (265 of 557)"],
    }
    card = dict(describe_dataset("user/kobe_2016-10b", new, 30, True))
    assert card["source files"] == "user1.csv, user2.csv"
    assert card["created"] == "2026-11-02 10:11:12"
    assert card["stays"] == "292" and card["meshes"].startswith("5 trained, 30 on the map")
    assert card["privacy N (min users)"] == "more than 10 distinct people per mesh (265 of 557 stays dropped, 48%)"
    assert card["space"].startswith("anchored to 'demo' (64 anchors")
    assert card["ApproximationLoss"] == "0.0123" and card["epochs"] == "40 (at most 800)"
    assert "48%" in card["warnings"]
    old = dict(describe_dataset("user/old_2021-05", {"anchored": False, "approximation_loss": 0.08}, 12, True))
    assert old["source files"] == "not recorded" and old["created"] == "not recorded" and old["warnings"] == "not recorded"
    assert old["space"].startswith("free")
    release = dict(describe_dataset("demo/osaka_2021_04", None, 1000, True))
    assert "cannot be renamed or deleted" in release["kind"]


def test_privacy_drop_and_few_meshes_warnings():
    quiet = input_warnings({"privacy": {"stays_in": 100, "stays_dropped": 10, "min_users": 10}, "meshes": 500})
    assert quiet == []
    heavy = input_warnings({"privacy": {"stays_in": 557, "stays_dropped": 265, "min_users": 10}, "meshes": 5})
    assert heavy[0].startswith("The privacy rule dropped 48% of the stays (265 of 557)")
    assert "Only 5 meshes" in heavy[1] and "at most 5 clusters" in heavy[1]
