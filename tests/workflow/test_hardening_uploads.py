"""Issue 17: uploads cannot exhaust the server (gzip bombs, files without line breaks, guessable tokens)."""

from __future__ import annotations

import base64
import gzip
import tracemalloc

import pytest

from core.errors import InputError
from core.mobility.stays import read_csv_header, read_frame, scan_csv
from core.workflow.userdata import UPLOADS, USER_RELEASE, UploadTooLarge, save_upload


def data_url(raw: bytes) -> str:
    return "data:application/gzip;base64," + base64.b64encode(raw).decode()


def test_gzip_bomb_refused_and_nothing_kept(tmp_path):
    bomb = gzip.compress(b"0" * (8 << 20))  # 8 MB of zeros in about 8 kB
    assert len(bomb) < 64 << 10
    with pytest.raises(UploadTooLarge, match="decompresses to more than 2 MB"):
        save_upload(tmp_path, [("stays.csv.gz", data_url(bomb))], decompressed_cap=2 << 20)
    root = tmp_path / USER_RELEASE / UPLOADS
    assert list(root.iterdir()) == []


def test_gzip_upload_stored_decompressed(tmp_path):
    text = b"stay_time,day_of_week,arrival_time,is_holiday,code\n30,Monday,09:00,False,5339450911\n"
    folder = save_upload(tmp_path, [("stays.csv.gz", data_url(gzip.compress(text)))], decompressed_cap=1 << 20)
    assert [p.name for p in folder.iterdir()] == ["stays.csv"] and (folder / "stays.csv").read_bytes() == text


def test_not_gzip_and_wrong_types_refused(tmp_path):
    with pytest.raises(InputError, match="gzip"):
        save_upload(tmp_path, [("stays.csv.gz", data_url(b"plain text"))])
    with pytest.raises(InputError, match="data URL"):
        save_upload(tmp_path, [("stays.csv", 12345)])  # type: ignore[list-item]


def test_upload_tokens_are_random(tmp_path):
    a = save_upload(tmp_path, [("a.csv", data_url(b"x\n"))]).name
    b = save_upload(tmp_path, [("a.csv", data_url(b"x\n"))]).name
    assert a != b and len(a) == 33 and int(a[1:], 16) and a[1:9] != b[1:9]


@pytest.mark.parametrize("with_header_break", [False, True])
def test_file_without_line_breaks_stays_under_a_memory_bound(tmp_path, with_header_break):
    p = tmp_path / "one_line.csv"
    with open(p, "wb") as fh:
        if with_header_break:
            fh.write(b"user_id,stay_time,day_of_week,arrival_time,is_holiday,lat,lon\n")
        for _ in range(32):
            fh.write(b"5," * (1 << 19))  # 32 MB, no line break
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="longer than"):
            if not with_header_break:
                read_csv_header(p, p.name)
            read_frame(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # a few MiB, not the file


def test_scan_csv_counts_and_limits(tmp_path):
    p = tmp_path / "t.csv.gz"
    p.write_bytes(gzip.compress(b"a,b\r\n" + b"1,2\r\n" * 1000))
    assert scan_csv(p, "t.csv.gz") == (5005, 1001)
    with pytest.raises(InputError, match="more than 10 rows"):
        scan_csv(p, "t.csv.gz", max_rows=10)
    with pytest.raises(InputError, match="once decompressed"):
        scan_csv(p, "t.csv.gz", max_bytes=1000)
