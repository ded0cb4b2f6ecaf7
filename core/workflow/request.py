"""The training-job protocol, owned here: what to train, how the worker is started, how it ends.

The dashboard builds a :class:`TrainRequest` from its form, :func:`supervise` starts the worker
(``python -m core add-dataset ...`` in a fresh process: torch hangs in a forked one) and reads how
it ended; the worker (the CLI's ``add-dataset``) turns its arguments back into the same request
with :meth:`TrainRequest.from_args` and runs :func:`run_worker`. Status and cancel files belong to
:class:`~core.workflow.jobs.JobRegistry`; the exit codes are declared here once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core import knobs
from core.atomic import write_text_atomic
from core.errors import CoreError, InputError, TrainingCancelled
from core.progress import Progress
from core.workflow.isolate import Limits, check_text_inputs

EXIT_OK = 0
EXIT_FAILED = 1  # a crash: the status file says why
EXIT_BAD_INPUT = 2  # the request or its input was refused (the message says why)
EXIT_CANCELLED = 3

# The package root's parent: the worker imports ``core`` from here whatever the caller's working folder.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

# A training job started from the dashboard reads at most this much (decompressed) text: 16 GB,
# 400 M rows (the OpenUAS release's biggest city is about 60 M stays). The CLI has no cap.
JOB_LIMITS = Limits(max_bytes=16 << 30, max_rows=400_000_000)


@dataclass(frozen=True)
class TrainRequest:
    """One dataset to train into ``DATA/user`` (anchored to a release's anchor set, or free).

    Attributes:
        inputs: stay tables or raw GPS files.
        data_dir: the data folder holding the releases.
        name, period: the dataset is saved as ``user/<name>_<period>``.
        anchors: the release whose anchor set to use; ``None`` trains free.
        mapping: a ``mesh_id -> code`` table for stays keyed by ``mesh_id``.
        columns: which column is which (:meth:`core.mobility.columns.ColumnMap.spec`, e.g.
            ``gps:user_id=id,time=when,lat=latitude,lon=longitude``) for files whose names are not recognised.
        dim, tol, epochs, schedule, alpha, seed: training settings (:mod:`core.knobs`).
        min_users: the privacy rule for raw GPS (more than N distinct people per mesh).
        tz, distance, min_duration, max_gap: the stay rule for raw GPS.
    """

    inputs: tuple[str, ...]
    data_dir: str
    name: str
    period: str
    anchors: str | None = "demo"
    mapping: str | None = None
    columns: str | None = None
    dim: int = knobs.DIM.default
    tol: float = knobs.TOL.default
    epochs: int = knobs.EPOCHS.default
    schedule: str = knobs.SCHEDULE.default
    alpha: float = knobs.ALPHA.default
    seed: int = knobs.SEED.default
    min_users: int = knobs.MIN_USERS.default
    tz: str = knobs.TIME_ZONE.default
    distance: float = knobs.STAY_RADIUS.default
    min_duration: float = knobs.MIN_STAY.default
    max_gap: float | None = knobs.MAX_GAP.default
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept in the job's info

    def validated(self) -> TrainRequest:
        """The request with every setting checked against its knob.

        Raises:
            InputError: naming the first bad setting.
        """
        from core.workflow.userdata import dataset_name

        if not self.inputs:
            raise InputError("input", "no file chosen", expected="an upload or a file from the inbox")
        missing = [p for p in self.inputs if not Path(p).exists()]
        if missing:
            raise InputError(str(missing[0]), "no such file", expected="an existing stay table or GPS file")
        dataset_name(self.name, self.period)
        checks = {
            "dim": knobs.DIM,
            "tol": knobs.TOL,
            "epochs": knobs.EPOCHS,
            "schedule": knobs.SCHEDULE,
            "alpha": knobs.ALPHA,
            "seed": knobs.SEED,
            "min_users": knobs.MIN_USERS,
            "tz": knobs.TIME_ZONE,
            "distance": knobs.STAY_RADIUS,
            "min_duration": knobs.MIN_STAY,
            "max_gap": knobs.MAX_GAP,
        }
        values = {k: knob.check(getattr(self, k)) for k, knob in checks.items()}
        from core.mobility.gps import _check_tz

        _check_tz(values["tz"])
        if self.columns not in (None, ""):
            from core.mobility.columns import ColumnMap

            values["columns"] = ColumnMap.parse(self.columns).spec()
        else:
            values["columns"] = None
        return TrainRequest(**{**asdict(self), **values, "inputs": tuple(map(str, self.inputs))})

    def column_map(self) -> Any:
        """The :class:`~core.mobility.columns.ColumnMap` of this request, or ``None``."""
        from core.mobility.columns import parse_optional

        return parse_optional(self.columns)

    @property
    def dataset(self) -> str:
        """The dataset's name inside the user release (``<name>_<period>``)."""
        from core.workflow.userdata import dataset_name

        return dataset_name(self.name, self.period)

    def train_config(self) -> Any:
        """The :class:`~core.area2vec.trainer.TrainConfig` of this request."""
        from core.area2vec.trainer import TrainConfig

        return TrainConfig(
            dim=self.dim, tol=self.tol, max_epochs=self.epochs, schedule=self.schedule, alpha=self.alpha, seed=self.seed
        )

    def gps_options(self) -> Any:
        """The :class:`~core.mobility.gps.GpsOptions` (stay rule) of this request."""
        from core.mobility.gps import GpsOptions

        return GpsOptions(tz=self.tz, distance_m=self.distance, min_minutes=self.min_duration, max_gap_minutes=self.max_gap)

    def to_argv(self, status_file: Path | None = None, cancel_file: Path | None = None, under_job: bool = False) -> list[str]:
        """The worker's command line (``python -m core add-dataset ...``)."""
        argv = [sys.executable, "-m", "core", "add-dataset", *self.inputs, "--data", self.data_dir]
        argv += ["--name", self.name, "--period", self.period, "--quiet"]
        argv += ["--anchors", self.anchors] if self.anchors else ["--free"]
        for flag, value in (
            ("--mapping", self.mapping),
            ("--columns", self.columns),
            ("--dim", self.dim),
            ("--tol", self.tol),
            ("--epochs", self.epochs),
            ("--schedule", self.schedule),
            ("--alpha", self.alpha),
            ("--seed", self.seed),
            ("--min-users", self.min_users),
            ("--tz", self.tz),
            ("--distance", self.distance),
            ("--min-duration", self.min_duration),
            ("--max-gap", self.max_gap),
            ("--status-file", status_file),
            ("--cancel-file", cancel_file),
        ):
            if value is not None:
                argv.append(f"{flag}={value}")
        if under_job:
            argv.append("--under-job")
        return argv

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainRequest:
        """The request the ``add-dataset`` command line describes."""
        return cls(
            inputs=tuple(map(str, args.inputs)),
            data_dir=str(args.data),
            name=args.name,
            period=args.period,
            anchors=None if args.free else args.anchors,
            mapping=args.mapping,
            columns=args.columns,
            dim=args.dim,
            tol=args.tol,
            epochs=args.epochs,
            schedule=args.schedule,
            alpha=args.alpha,
            seed=args.seed,
            min_users=args.min_users,
            tz=args.tz,
            distance=args.distance,
            min_duration=args.min_duration,
            max_gap=args.max_gap,
        )

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """The ``add-dataset`` options, each read from its knob."""
        parser.add_argument("inputs", nargs="+", help="stay table, or GPS fix files")
        parser.add_argument("--data", default="data", metavar="DIR", help="data folder (default: data)")
        parser.add_argument("--name", required=True, help="dataset name: a letter, then letters, digits, '_' or '-'")
        parser.add_argument("--period", required=True, help="period label, e.g. 2016-10")
        g = parser.add_mutually_exclusive_group()
        g.add_argument("--anchors", default="demo", metavar="RELEASE", help="release whose anchor set to use (default: demo)")
        g.add_argument("--free", action="store_true", help="train without anchors (not comparable with other datasets)")
        parser.add_argument("--mapping", metavar="CSV", help="mesh_id -> code table for stays keyed by mesh_id")
        add_columns_argument(parser)
        knobs.MIN_USERS.add_to(parser, "--min-users", metavar="N")
        knobs.TIME_ZONE.add_to(parser, "--tz")
        knobs.STAY_RADIUS.add_to(parser, "--distance")
        knobs.MIN_STAY.add_to(parser, "--min-duration")
        knobs.MAX_GAP.add_to(parser, "--max-gap")
        knobs.DIM.add_to(parser, "--dim")
        knobs.TOL.add_to(parser, "--tol")
        knobs.EPOCHS.add_to(parser, "--epochs")
        knobs.SCHEDULE.add_to(parser, "--schedule", choices=knobs.SCHEDULES)
        knobs.ALPHA.add_to(parser, "--alpha")
        knobs.SEED.add_to(parser, "--seed")
        parser.add_argument("--status-file", help="write progress as JSON here (for the dashboard)")
        parser.add_argument("--cancel-file", help="stop when this file appears")
        parser.add_argument("--under-job", action="store_true", help="run under a job lock that the caller already holds")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_columns_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--columns`` option (one definition for every command that reads GPS or stay files)."""
    parser.add_argument(
        "--columns",
        metavar="MAP",
        help=(
            "which column is which, for files whose names are not recognised: [gps:|stays:]role=column,... "
            "GPS roles user_id, time, date, lat, lon (e.g. user_id=id,time=when,lat=latitude,lon=longitude); "
            "stay roles stay_time, day_of_week, arrival_time, is_holiday, code, mesh_id, mesh_size"
        ),
    )


def _status_writer(status_file: Path | None) -> Callable[..., None]:
    def status(state: str, **extra: Any) -> None:
        if status_file is not None:
            write_text_atomic(status_file, json.dumps({"state": state, **extra, "updated": time.time()}, default=str))

    return status


def run_worker(
    request: TrainRequest,
    status_file: Path | None = None,
    cancel_file: Path | None = None,
    under_job: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> tuple[int, dict]:
    """Run one request in this process (the worker side): train, save, report through the status file.

    Without ``under_job`` the worker takes the data folder's one-job lock itself (and so shows up
    in the dashboard). SIGTERM or the cancel file stops it cleanly.

    Returns:
        The exit code (:data:`EXIT_OK`, :data:`EXIT_CANCELLED`) and the result (plain data).

    Raises:
        CoreError: bad input (after writing a ``failed`` status).
    """
    from core.workflow.jobs import JobRegistry
    from core.workflow.userdata import USER_RELEASE, add_dataset

    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    registry, job = None, None
    if not under_job:
        registry = JobRegistry(Path(request.data_dir) / USER_RELEASE)
        job = registry.new_id()
        registry.start(job, {"name": request.dataset, "files": [Path(i).name for i in request.inputs], "source": "command line"})
        registry.set_worker(job, os.getpid())
        status_file = status_file or registry.status_path(job)
        cancel_file = cancel_file or registry.cancel_path(job)
    status = _status_writer(status_file)
    last = {"t": 0.0}

    def on_progress(p: Progress) -> None:
        if progress is not None:
            progress(p)
        now = time.monotonic()
        if now - last["t"] > 0.25 or p.stage == "write":
            last["t"] = now
            status("running", **p.to_dict())

    def cancelled() -> bool:
        return stop["flag"] or (cancel_file is not None and cancel_file.exists())

    try:
        if under_job:
            # Started by the server: inbox files are read here, never by the web process; a .gz is
            # streamed against the job's cap on decompressed text before any parser holds it.
            check_text_inputs(list(request.inputs), JOB_LIMITS)
        result = add_dataset(
            request.data_dir,
            list(request.inputs),
            request.name,
            request.period,
            request.anchors,
            request.train_config(),
            mapping=request.mapping,
            gps_options=request.gps_options(),
            min_users=request.min_users,
            progress=on_progress,
            cancel=cancelled,
            columns=request.column_map(),
        )
        status("done", fraction=1.0, dataset=result["dataset"], metrics=result["metrics"])
        return EXIT_OK, result
    except TrainingCancelled:
        status("cancelled", message="cancelled")
        return EXIT_CANCELLED, {}
    except CoreError as exc:
        status("failed", message=str(exc))
        raise
    except Exception as exc:  # a crash still leaves a readable status
        status("failed", message=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if registry is not None and job is not None:
            registry.finish(job)


def busy_status(registry: Any) -> dict | None:
    """The final status of a request refused because another job runs (``None`` when none runs)."""
    running = registry.current()
    if running is None:
        return None
    name = (running.get("info") or {}).get("name", running["job"])
    return {
        "state": "busy",
        "message": f"Busy: another training job is running ({name}). One job runs at a time: wait for it or cancel it.",
    }


def supervise(registry: Any, request: TrainRequest) -> dict:
    """Run ``request`` in a worker process under the registry's one-job lock; return its final status.

    Called in the dashboard's background job. The returned status is plain data: ``state`` is one
    of ``busy``, ``invalid``, ``done``, ``cancelled``, ``stopped``, ``failed``.
    """
    from core.workflow.jobs import JobBusy
    from core.workflow.userdata import USER_RELEASE, dataset_exists

    busy = busy_status(registry)
    if busy is not None:
        return busy
    try:
        request = request.validated()
        if dataset_exists(request.data_dir, request.dataset):
            raise InputError(
                "dataset name", f"'{USER_RELEASE}/{request.dataset}' already exists", expected="a new name or period label"
            )
    except InputError as exc:
        return {"state": "invalid", "message": str(exc)}
    job = registry.new_id()
    info = {"name": request.dataset, "files": [Path(p).name for p in request.inputs], "anchors": request.anchors}
    try:
        registry.start(job, info)
    except JobBusy as exc:
        return {"state": "busy", "message": f"Busy: {exc}"}
    try:
        if registry.cancel_requested(job):
            registry.write_status(job, {"state": "cancelled", "message": "cancelled", "info": {"name": request.dataset}})
            return registry.read_status(job)
        argv = request.to_argv(registry.status_path(job), registry.cancel_path(job), under_job=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
        log_path = registry.job_dir(job) / "worker.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            registry.set_worker(job, proc.pid)
            rc = proc.wait()
        st = _final_status(registry, job, rc, log_path)
        st["info"] = {"name": request.dataset}
        registry.write_status(job, st)
        return st
    finally:
        registry.finish(job)


def _final_status(registry: Any, job: str, rc: int, log_path: Path) -> dict:
    st = registry.read_status(job)
    if st.get("state") in ("done", "cancelled", "failed"):
        return dict(st)
    if rc < 0:
        # Killed by a signal: Dash's cancel kills the worker first and the job process a moment later,
        # while the cancel button's own callback marks the job; give that a moment to land.
        time.sleep(0.5)
        cancelled = registry.cancel_requested(job)
        return {
            **st,
            "state": "cancelled" if cancelled else "stopped",
            "message": "cancelled" if cancelled else f"the worker was killed (signal {-rc})",
        }
    if rc == EXIT_CANCELLED:
        return {**st, "state": "cancelled", "message": "cancelled"}
    tail = log_path.read_text(errors="replace")[-800:]
    return {**st, "state": "failed", "message": f"the worker exited with code {rc}: {tail}"}
