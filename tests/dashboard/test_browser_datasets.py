"""Your datasets and import in real headless Chromium: the column mapping of a GPS file with unusual
names (upload, map, train, see it appear), its warnings, a reload mid-job, renaming and deleting.

A tiny demo release provides the anchor set; the app runs as a subprocess (background callbacks need
a real server). No console errors on any page.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

KOBE = sorted((Path(__file__).resolve().parents[1] / "data" / "kobe").glob("user*.csv"))


@pytest.fixture(scope="module")
def data(tiny_release, tmp_path_factory):
    d = tmp_path_factory.mktemp("datasets") / "data"
    shutil.copytree(tiny_release, d)
    return d


@pytest.fixture(scope="module")
def odd_gps(tmp_path_factory) -> Path:
    """The Kobe sample's fixes in one file named id, when, latitude, longitude (not recognised on their own)."""
    from core.mobility.gps import read_fixes

    fx = read_fixes(KOBE)
    when = pd.to_datetime((fx.t * 1e9).astype("int64"), utc=True).tz_convert("Asia/Tokyo").strftime("%Y-%m-%d %H:%M:%S")
    path = tmp_path_factory.mktemp("odd") / "odd_fixes.csv"
    pd.DataFrame({"id": fx.users[fx.user], "when": when, "latitude": fx.lat, "longitude": fx.lon}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def server(data):
    from dashboard.serve import running_app

    with running_app(data) as url:
        yield url


@pytest.fixture
def pages(chromium):
    errors: list[str] = []
    made = []

    def make():
        pg = chromium.new_page(viewport={"width": 1400, "height": 1300})
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        made.append(pg)
        return pg

    yield make
    for pg in made:
        pg.close()
    assert errors == [], errors


def _open_train(page, server):
    page.goto(server + "/?view=train")
    page.wait_for_selector("#train-upload", timeout=60_000)


def _bar_and_text(page) -> tuple[str, str]:
    """The progress bar's value and the status text, read in one go (one render)."""
    return tuple(
        page.evaluate(
            "[document.querySelector('#train-bar').getAttribute('value'), document.querySelector('#train-status').innerText]"
        )
    )


def _pick_dataset(page, fragment: str) -> None:
    """Search the datasets list by typing, then choose the match.

    The page's first poll refills the list's options (new datasets appear without a reload); a menu
    opened just before that answer closes with it and loses the typed text, so the search is typed
    again (a few times at most) until the match shows.
    """
    option = page.locator(f"[role=option]:has-text('{fragment}')").first
    for _ in range(5):
        page.click("#datasets-pick")
        page.keyboard.type(fragment)
        try:
            option.wait_for(timeout=6_000)
            break
        except Exception:
            page.keyboard.press("Escape")
    option.click()
    page.wait_for_selector("#dataset-card dt", timeout=30_000)


def test_gps_with_unusual_column_names_is_mapped_trained_and_listed(pages, server, odd_gps, data):
    page = pages()
    _open_train(page, server)
    page.set_input_files("#train-upload input[type=file]", str(odd_gps))
    # Not taken for a stay table: the mapping step shows the file's columns with a first guess.
    page.wait_for_selector("#train-colmap-apply", state="visible", timeout=60_000)
    page.wait_for_selector("#train-preview:has-text('Columns not recognised')")
    assert "id, when, latitude, longitude" in page.inner_text("#train-colmap-info")
    page.wait_for_selector("#train-colmap-fields .dash-dropdown-value:has-text('when')", timeout=30_000)
    values = page.locator("#train-colmap-fields .dash-dropdown-value").all_inner_texts()
    assert values[:5] == ["id", "when", "(none)", "latitude", "longitude"], values
    page.click("#train-colmap-apply")
    page.wait_for_selector("#train-colmap-msg:has-text('Using user_id = id, time = when')", timeout=30_000)
    page.wait_for_selector("#train-preview .preview-facts", timeout=60_000)
    facts = page.inner_text("#train-preview")
    assert "raw GPS" in facts and "5,074 from 11 people" in facts and "user_id = id, time = when" in facts
    # The privacy rule drops nearly half the stays: said plainly, with the share, before training.
    assert "The privacy rule dropped 48% of the stays" in page.inner_text("#train-preview .warning")
    page.fill("#train-name", "odd")
    page.fill("#train-period", "2016-10b")
    page.wait_for_selector("#train-name-msg:has-text('Will be saved as user/odd_2016-10b')")
    page.click("#train-start")
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        bar, text = _bar_and_text(page)
        if not seen or seen[-1] != (bar, text):
            seen.append((bar, text))
        if text.startswith("Training odd_2016-10b"):
            break
        page.wait_for_timeout(100)
    # Reloaded mid-job, the page finds the job and, when it ends, its result link and warnings.
    page.goto(server + "/?view=train")
    page.wait_for_selector("#train-status .open-result", timeout=120_000)
    while True:
        bar, text = _bar_and_text(page)
        if not seen or seen[-1] != (bar, text):
            seen.append((bar, text))
        if text.startswith("Done"):
            break
        page.wait_for_timeout(100)
    running = [(b, t) for b, t in seen if t.startswith("Training")]
    assert all(f"· {b}%" in t for b, t in running), running  # the bar and the text show one number
    status = page.inner_text("#train-status")
    assert "user/odd_2016-10b is ready" in status and "dropped 48% of the stays" in status and "Only " in status
    assert page.get_attribute("#train-status .open-result", "href") == "?ds=user/odd_2016-10b&k=10"
    # The dataset is listed by the name it was given (the period's 'b' kept), marked anchored, with its card.
    _pick_dataset(page, "odd_2016-10b")
    option = page.inner_text("#datasets-pick")
    assert "user / odd_2016-10b · anchored to demo" in option
    card = page.inner_text("#dataset-card")
    assert "odd_fixes.csv" in card and "more than 10 distinct people per mesh" in card and "anchored to 'demo'" in card
    assert (data / "user" / "japan_city" / "geojson" / "odd_2016-10b.geojson").is_file()
    page.locator(".datasets").scroll_into_view_if_needed()


def _user_dataset(data: Path, name: str) -> None:
    """A small free dataset of the user release, written as training writes one."""
    from core.release.layout import discover, read_dataset
    from core.workflow.userdata import write_user_dataset

    ds = read_dataset(next(r for r in discover(data) if r.name == "osaka_2021_04"))
    own = ~ds.complemented
    metrics = {"anchored": False, "n_meshes": int(own.sum()), "period": "2021-04", "source_files": ["inbox.csv"], "warnings": []}
    write_user_dataset(data / "user", name, ds.codes[own], ds.mesh_sizes[own], ds.vectors[own], ds.decoder, metrics)


def test_rename_then_delete_a_user_dataset_with_confirmation(pages, server, data):
    _user_dataset(data, "tokyo_inbox_2021-04")
    _user_dataset(data, "tokyo_c_2021-04")
    page = pages()
    dialogs: list[str] = []
    answer = {"accept": False}

    def on_dialog(d):
        dialogs.append(d.message)
        d.accept() if answer["accept"] else d.dismiss()

    page.on("dialog", on_dialog)
    _open_train(page, server)
    # Two datasets that the old labels mixed up are told apart; the free one says so.
    _pick_dataset(page, "tokyo_inbox")
    assert page.inner_text("#datasets-pick").strip() == "user / tokyo_inbox_2021-04 · free"
    assert "free (a space of its own" in page.inner_text("#dataset-card")
    # A name that exists: a clear error, no dialog, nothing changed.
    page.fill("#dataset-new-name", "tokyo_c_2021-04")
    page.click("#dataset-rename")
    page.wait_for_selector("#dataset-msg .error:has-text('already exists')", timeout=30_000)
    assert dialogs == []
    # Dismissed: nothing happens.
    page.fill("#dataset-new-name", "tokyo_inbox_2021-04b")
    page.click("#dataset-rename")
    page.wait_for_function("document.querySelector('#dataset-msg').innerText === ''", timeout=30_000)
    page.wait_for_timeout(1000)
    assert dialogs == ["Rename user/tokyo_inbox_2021-04 to user/tokyo_inbox_2021-04b?"]
    geo = data / "user" / "japan_city" / "geojson"
    assert (geo / "tokyo_inbox_2021-04.geojson").is_file()
    # Accepted: renamed, and the new name is selected and listed everywhere.
    answer["accept"] = True
    page.click("#dataset-rename")
    page.wait_for_selector(
        "#dataset-msg:has-text('Renamed user/tokyo_inbox_2021-04 to user/tokyo_inbox_2021-04b')", timeout=30_000
    )
    assert not (geo / "tokyo_inbox_2021-04.geojson").exists() and (geo / "tokyo_inbox_2021-04b.geojson").is_file()
    page.wait_for_selector("#datasets-pick:has-text('user / tokyo_inbox_2021-04b · free')", timeout=30_000)
    page.wait_for_selector("#dataset-card:has-text('user/tokyo_inbox_2021-04b')", timeout=30_000)
    # Delete, confirmed.
    page.click("#dataset-delete")
    page.wait_for_selector("#dataset-msg:has-text('Deleted user/tokyo_inbox_2021-04b')", timeout=30_000)
    assert dialogs[-1].startswith("Delete user/tokyo_inbox_2021-04b for good")
    assert not list(geo.glob("tokyo_inbox*")) and not list((data / "user" / "japan_city" / "model").glob("tokyo_inbox*"))
    # Gone from the map's list too; the other one stays.
    page.goto(server + "/")
    page.wait_for_selector(".legend-item", timeout=60_000)
    page.click("#dataset-select")
    page.wait_for_selector("[role=option]:has-text('tokyo_c_2021-04')", timeout=30_000)
    options = " ".join(page.locator("[role=option]").all_inner_texts())
    assert "tokyo_inbox" not in options
    # The demo's datasets cannot be renamed or deleted: the buttons are off (and the server refuses anyway).
    _open_train(page, server)
    _pick_dataset(page, "osaka")
    assert "cannot be renamed or deleted" in page.inner_text("#dataset-card")
    assert page.is_disabled("#dataset-rename") and page.is_disabled("#dataset-delete")
