"""Column names and the fixed numbers of the OpenUAS stay tokenisation (SPEC §1-2, §6-7)."""

from __future__ import annotations

# Stay table columns (SPEC §1).
STAY_TIME = "stay_time"
DAY_OF_WEEK = "day_of_week"
ARRIVAL_TIME = "arrival_time"
IS_HOLIDAY = "is_holiday"
MESH_ID = "mesh_id"
MESH_CODE = "code"
MESH_SIZE = "mesh_size"
ANCHOR_ID = "anchor_id"

STAY_COLUMNS = (STAY_TIME, DAY_OF_WEEK, ARRIVAL_TIME, IS_HOLIDAY)

# Count table (the meshes x 168 matrix as Parquet, one row per non-zero cell): code, mesh_size, token, count.
TOKEN = "token"
COUNT = "count"
COUNT_COLUMNS = (MESH_CODE, MESH_SIZE, TOKEN, COUNT)
AREA_KEYS = (MESH_ID, MESH_CODE)

# mesh_id -1 means "no valid mesh": such stays are skipped (SPEC §1).
NO_MESH = -1

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# 168 tokens = 2 day types x 12 two-hour arrival bins x 7 duration classes (SPEC §2).
N_DAY_TYPES = 2
N_TIME_BINS = 12
N_DURATIONS = 7
N_TOKENS = N_DAY_TYPES * N_TIME_BINS * N_DURATIONS
# Inclusive upper bounds (minutes) of duration classes 0..5; longer stays are class 6.
DURATION_BOUNDS = (30, 60, 120, 240, 360, 720)

# Stay weight matrix (SPEC §6): a token of duration class d spans STAY_SPANS[d] 2-hour bins.
STAY_SPANS = (1, 1, 1, 2, 3, 5, 10)
# Weekday tokens weigh 2/7 and holiday tokens 5/7 so 5 weekdays and 2 weekend days compare per day.
DAY_TYPE_WEIGHTS = (2 / 7, 5 / 7)

# Cluster ordering (SPEC §7).
KMEANS_SEED = 20210401
RELEASED_KS = (5, 10, 20)
ORDER_DAY_WEIGHTS = (1e-4, 2e-4)
ORDER_DURATION_MINUTES = (15, 30, 60, 120, 240, 360, 720)

# Similar-area distance bins (SPEC §7): 0 itself, 1 (<=2), 2 (2,4], 3 (4,8], 4 (8,16), 5 (>=16).
SIMILARITY_EDGES = (2.0, 4.0, 8.0, 16.0)
