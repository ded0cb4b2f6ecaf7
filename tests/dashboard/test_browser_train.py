"""The training view in real headless Chromium: upload, preview, anchored training, cancel, reload, busy, errors.

A tiny demo release provides the anchor set; the app runs as a subprocess (background callbacks
need a real server). Progress is asserted on what was seen over the run and on the final state.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def data(tiny_release, tmp_path_factory):
    d = tmp_path_factory.mktemp("train") / "data"
    shutil.copytree(tiny_release, d)
    return d


@pytest.fixture(scope="module")
def files(data, tmp_path_factory):
    """A user's stay CSV (20,000 stays keyed by mesh code) and a broken one."""
    out = tmp_path_factory.mktemp("files")
    stays = pd.read_parquet(data / "demo" / "stays" / "osaka_2021_04.parquet")
    good = stays.sample(20_000, random_state=1)[["stay_time", "day_of_week", "arrival_time", "is_holiday", "code", "mesh_size"]]
    good.to_csv(out / "my_stays.csv", index=False)
    bad = good.head(6).copy()
    bad["arrival_time"] = bad["arrival_time"].astype(str)
    bad.iloc[1, bad.columns.get_loc("arrival_time")] = "25:99"
    bad.iloc[3, bad.columns.get_loc("arrival_time")] = "noon"
    bad.to_csv(out / "broken.csv", index=False)
    stays.sample(60_000, random_state=2, replace=True)[good.columns].to_csv(out / "big_month.csv", index=False)  # about 2 MB
    return out


@pytest.fixture(scope="module")
def server(data):
    from dashboard.serve import running_app

    with running_app(data, extra_args=("--upload-cap-mb", "1")) as url:  # a small cap, to see it refuse a file
        yield url


def _new_page(chromium, errors):
    pg = chromium.new_page(viewport={"width": 1400, "height": 1300})
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    return pg


@pytest.fixture
def pages(chromium):
    errors: list[str] = []
    made = []

    def make():
        pg = _new_page(chromium, errors)
        made.append(pg)
        return pg

    yield make
    for pg in made:
        pg.close()
    assert errors == [], errors


def _open_train(page, server):
    page.goto(server + "/?view=train")
    page.wait_for_selector("#train-upload", timeout=60_000)


def _upload(page, path):
    page.set_input_files("#train-upload input[type=file]", str(path))


def _prepare_job(page, server, path, name: str, period: str) -> str:
    """Open the training view, upload ``path``, wait for its preview, fill the name; return the preview text."""
    _open_train(page, server)
    page.set_input_files("#train-upload input[type=file]", [str(p) for p in path] if isinstance(path, list) else str(path))
    page.wait_for_selector("#train-preview .preview-facts", timeout=60_000)
    page.fill("#train-name", name)
    page.fill("#train-period", period)
    page.wait_for_selector(f"#train-name-msg:has-text('Will be saved as user/{name}_{period}')")
    return page.inner_text("#train-preview")


def _status(page) -> str:
    return page.inner_text("#train-status")


def _wait_status(page, prefix: str, timeout: float = 120.0, seen: list | None = None) -> str:
    """Poll the job status line until it starts with ``prefix``; record every distinct (bar, text) seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = _status(page)
        if seen is not None:
            value = page.get_attribute("#train-bar", "value")
            if not seen or seen[-1] != (value, text):
                seen.append((value, text))
        if text.startswith(prefix):
            return text
        page.wait_for_timeout(100)
    raise AssertionError(f"status never became {prefix!r}; last: {_status(page)!r}")


def test_upload_preview_train_anchored_then_open_it(pages, server, files, data):
    page = pages()
    facts = _prepare_job(page, server, files / "my_stays.csv", "myarea", "2021-05")
    n_meshes = pd.read_csv(files / "my_stays.csv")["code"].nunique()
    assert "20,000" in facts and f"{n_meshes:,}" in facts and "weekend / holiday stays" in facts
    page.wait_for_function("document.querySelectorAll('#train-preview .leaflet-interactive').length > 0", timeout=30_000)
    assert page.locator("#train-preview .leaflet-interactive").count() == n_meshes  # one rectangle per mesh
    page.click("#train-start")
    seen: list = []
    done = _wait_status(page, "Done", seen=seen)
    assert "user/myarea_2021-05" in done
    # The bar moved: the job was seen running with a value between start and end, then at 100.
    running = [(v, t) for v, t in seen if t.startswith("Training myarea")]
    assert running, seen
    assert any(0 < float(v) < 100 for v, _ in running) and seen[-1][0] == "100", seen
    page.wait_for_selector("#train-outcome:has-text('ApproximationLoss')", timeout=30_000)
    assert "anchored to 'demo'" in page.inner_text("#train-outcome")
    # The new dataset opens with its map, legend and chart, and is in the selector, without a restart.
    page.click("#open-trained")
    page.wait_for_selector(".legend-item", timeout=60_000)
    page.wait_for_function(
        "[...document.querySelectorAll('#mesh-map img.leaflet-tile-loaded')].some(i => i.src.includes('ds=user%2Fmyarea_2021-05'))",
        timeout=60_000,
    )
    assert page.locator(".legend-item").count() == 10
    assert "Trained here: ApproximationLoss" in page.inner_text("#dataset-summary")
    assert page.evaluate("document.querySelector('#cluster-chart .js-plotly-plot').data.length") > 0
    page.click("#dataset-select")
    page.wait_for_selector("[role=option]:has-text('user / myarea_2021-05')", timeout=30_000)
    assert (data / "user" / "japan_city" / "geojson" / "myarea_2021-05.geojson").is_file()


def test_cancel_a_job_found_again_after_reload_and_a_second_job_is_refused(pages, server, files, data):
    page = pages()
    _prepare_job(page, server, files / "my_stays.csv", "cancelme", "2021-05")
    page.get_by_text("Advanced").click()
    page.fill("#train-epochs", "1000000")  # with tolerance 0 it runs until cancelled
    page.fill("#train-tol", "0")
    page.click("#train-start")
    _wait_status(page, "Training cancelme", timeout=60)
    # Another page (a reload, or a colleague) finds the running job, and a second job is refused.
    other = pages()
    _open_train(other, server)
    _wait_status(other, "Training cancelme", timeout=30)
    other.click("#train-start")
    other.wait_for_selector("#train-outcome:has-text('Busy')", timeout=30_000)
    assert "one job runs at a time" in other.inner_text("#train-outcome").lower()
    # Cancel from the first page: the job stops and no dataset appears.
    page.click("#train-cancel")
    _wait_status(page, "Cancelled", timeout=60)
    _wait_status(other, "Cancelled", timeout=30)
    time.sleep(1.0)
    assert not list((data / "user" / "japan_city" / "geojson").glob("cancelme*"))
    assert not list((data / "user" / "japan_city" / "model").glob("cancelme*"))
    page.goto(server + "/")
    page.wait_for_selector(".legend-item", timeout=60_000)
    page.click("#dataset-select")
    page.wait_for_selector("[role=option]", timeout=30_000)
    options = " ".join(page.locator("[role=option]").all_inner_texts())
    assert "cancelme" not in options and "osaka" in options


def test_broken_file_shows_the_bad_rows(pages, server, files):
    page = pages()
    _open_train(page, server)
    _upload(page, files / "broken.csv")
    page.wait_for_selector("#train-preview .error", timeout=60_000)
    text = page.inner_text("#train-preview .error")
    assert "broken.csv" in text and "arrival_time" in text and "not a time of day" in text
    rows = page.locator("#train-preview .error-rows tbody tr").all_inner_texts()
    assert [r.split("\t")[0] for r in rows] == ["2", "4"], rows
    assert "25:99" in rows[0] and "noon" in rows[1]


def test_raw_gps_upload_then_training(pages, server, files):
    """Eleven GPS files at once: stays are detected and the privacy rule applied before training."""
    kobe = sorted((Path(__file__).resolve().parents[1] / "data" / "kobe").glob("user*.csv"))
    page = pages()
    facts = _prepare_job(page, server, kobe, "kobe", "2016-10")
    assert "raw GPS" in facts and "5,074 from 11 people" in facts and "more than 10 people" in facts
    assert "2016-10-16 to 2016-10-22" in facts
    page.click("#train-start")
    _wait_status(page, "Done", timeout=120)
    page.wait_for_selector("#train-outcome:has-text('ApproximationLoss')", timeout=30_000)
    from core.workflow.userdata import prepare

    assert f"meshes\n{prepare(kobe).counts.n_areas}" in page.inner_text("#train-outcome")
    # The stay rule is a form field: a longer shortest stay finds fewer stays in the preview.
    from core.mobility.gps import GpsOptions, gps_to_stays

    page.get_by_text("Advanced").click()
    page.fill("#train-gps-minutes", "30")
    page.keyboard.press("Enter")
    n30 = len(gps_to_stays(kobe, GpsOptions(min_minutes=30))[0])
    page.wait_for_selector(f"#train-preview dd:text-is('{n30:,}')", timeout=60_000)
    assert n30 < 557


def test_upload_cap_and_the_inbox(pages, server, files, data):
    page = pages()
    _open_train(page, server)
    _upload(page, files / "big_month.csv")
    page.wait_for_selector("#train-upload-msg .error", timeout=60_000)
    msg = page.inner_text("#train-upload-msg")
    assert "above the upload cap of 1.0 MB" in msg and "inbox" in msg
    # Put on the server's inbox instead, the same file can be picked from the list.
    (data / "inbox").mkdir(exist_ok=True)
    shutil.copy(files / "big_month.csv", data / "inbox" / "big_month.csv")
    _open_train(page, server)
    page.click("#train-inbox")
    page.locator("[role=option]:has-text('big_month.csv')").click()
    page.wait_for_selector("#train-preview .preview-facts", timeout=60_000)
    assert "60,000" in page.inner_text("#train-preview")
