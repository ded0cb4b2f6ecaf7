"""Commands over embeddings of one shared space: ``cluster`` (joint clusters) and ``diff`` (two periods)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from core import knobs
from core.constants import KMEANS_SEED
from core.errors import InputError
from core.release.layout import ReleaseDataset


def load_any(path: str) -> ReleaseDataset:
    """A training run (a folder written by ``train``, or its embeddings CSV) or a release dataset's GeoJSON.

    Raises:
        InputError: a path that is none of these.
    """
    from core.area2vec.embeddings import AreaEmbeddings, read_embeddings_csv
    from core.release.layout import DatasetRef, read_dataset

    p = Path(path)
    if p.suffix.lower() == ".geojson" and p.is_file():
        model = p.parent.parent / "model" / f"{p.stem}.pth"
        ref = DatasetRef(p.parent.parent.parent.name, p.stem, p, model if model.is_file() else None)
        return read_dataset(ref)
    if p.is_dir() or (p.suffix.lower() == ".csv" and p.is_file()):
        emb = AreaEmbeddings.load(p) if p.is_dir() else read_embeddings_csv(p)
        sizes = emb.mesh_sizes if emb.mesh_sizes is not None else np.zeros(len(emb.keys), np.int64)
        name = p.name if p.is_dir() else p.stem
        return ReleaseDataset(name, "run", emb.keys, np.asarray(sizes), emb.vectors, decoder=emb.decoder)
    raise InputError(str(p), "no such run or dataset", expected="a folder written by 'train', its embeddings.csv, or a .geojson")


def _names(paths: list[str]) -> list[str]:
    names = [Path(p).name if Path(p).is_dir() else Path(p).stem for p in paths]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


def cmd_cluster(args: argparse.Namespace) -> int:
    """Joint clusters of several runs/datasets, or (``--release``) of a release's whole space."""
    import pandas as pd

    from core.analysis.joint import SpacePart, fit_joint
    from core.atomic import atomic_path

    if args.release:
        return _cluster_release(args)
    if not args.inputs:
        raise InputError("inputs", "nothing to cluster", expected="training runs / release datasets, or --release DIR")
    data = dict(zip(_names(args.inputs), (load_any(p) for p in args.inputs), strict=True))
    parts = {n: SpacePart(ds.vectors, ds.decoder, ds.complemented, ds.labels.get(args.k)) for n, ds in data.items()}
    jc = fit_joint(parts, args.k, space="command line", seed=args.seed)
    names = jc.display_names()
    frames = []
    for n, ds in data.items():
        labels = jc.assign(ds.vectors, ds.decoder)
        frames.append(pd.DataFrame({"dataset": n, "key": ds.codes, "cluster": labels, "name": np.asarray(names)[labels]}))
    table = pd.concat(frames, ignore_index=True)
    if args.out:
        with atomic_path(Path(args.out)) as tmp:
            table.to_csv(tmp, index=False)
    summary = {
        "k": args.k,
        "datasets": list(data),
        "clusters": [{"cluster": c, "name": names[c], "meshes": int(s)} for c, s in enumerate(jc.sizes)],
    }
    print(json.dumps({**summary, "out": args.out}, indent=2))
    return 0


def _cluster_release(args: argparse.Namespace) -> int:
    from core.analysis.joint import SpacePart, fit_joint, from_released
    from core.release.clusters import clusters_file, save_joint
    from core.release.layout import discover, read_dataset

    root = Path(args.release)
    refs = [r for r in discover(root) if r.geojson.parent.parent.parent.resolve() == root.resolve()]
    if not refs:
        raise InputError(str(root), "no datasets here", expected="a release folder (japan_city/geojson/*.geojson)")
    data = {r.name: read_dataset(r) for r in refs}
    parts = {n: SpacePart(ds.vectors, ds.decoder, ds.complemented, ds.labels.get(args.k)) for n, ds in data.items()}
    released = all(p.labels is not None for p in parts.values()) and not args.refit
    jc = from_released(parts, args.k, root.name) if released else fit_joint(parts, args.k, space=root.name, seed=args.seed)
    path = save_joint(clusters_file(root, args.k), jc)
    print(
        json.dumps(
            {
                "release": str(root),
                "k": args.k,
                "source": jc.source,
                "datasets": len(data),
                "meshes": int(sum(jc.sizes)),
                "clusters": [{"cluster": c, "name": jc.name(c), "meshes": int(s)} for c, s in enumerate(jc.sizes)],
                "file": str(path),
            },
            indent=2,
        )
    )
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Two periods of the same meshes: distance, pattern change, the changed flag and joint clusters."""
    import pandas as pd

    from core.analysis.diff import diff_datasets
    from core.analysis.joint import SpacePart, fit_joint
    from core.atomic import atomic_path

    a, b = load_any(args.a), load_any(args.b)
    if a.decoder is None or b.decoder is None:
        raise InputError(
            args.a if a.decoder is None else args.b, "has no model file", expected="a run or dataset with its decoder (model.pth)"
        )
    parts = {"A": SpacePart(a.vectors, a.decoder, a.complemented), "B": SpacePart(b.vectors, b.decoder, b.complemented)}
    jc = fit_joint(parts, args.k, space="diff", seed=KMEANS_SEED)
    d = diff_datasets(
        a,
        b,
        k=args.k,
        threshold=args.threshold,
        labels_a=jc.assign(a.vectors, a.decoder),
        labels_b=jc.assign(b.vectors, b.decoder),
    )
    table = pd.DataFrame(
        {
            "key": d.codes,
            "distance": np.round(d.distance, 6),
            "pattern_change": np.round(d.pattern_change, 6),
            "changed": d.changed,
            "cluster_a": d.labels_a,
            "cluster_b": d.labels_b,
        }
    )
    if args.out:
        with atomic_path(Path(args.out)) as tmp:
            table.to_csv(tmp, index=False)
    names = jc.display_names()
    moves = d.transitions()
    np.fill_diagonal(moves, 0)
    top = np.dstack(np.unravel_index(np.argsort(-moves, axis=None)[:3], moves.shape))[0]
    print(
        f"{len(d.codes):,} meshes in both; {int(d.changed.sum()):,} changed their stay pattern ({d.changed.mean():.1%}; "
        f"threshold {d.threshold:.4f}{' from the data' if args.threshold is None else ''}); "
        f"{d.stayed:.1%} stayed in their cluster (k = {args.k}); median embedding distance {np.median(d.distance):.3f}",
        file=sys.stderr,
    )
    for i, j in top:
        if moves[i, j]:
            print(f"  {moves[i, j]:,} meshes: {names[i]} -> {names[j]}", file=sys.stderr)
    if args.out:
        print(f"-> {args.out}")
    return 0


def cmd_vector(args: argparse.Namespace) -> int:
    """A run or release dataset as a GeoPackage / GeoParquet / GeoJSON file of mesh polygons."""
    from core.geo.meshcode import infer_sizes, invalid_codes
    from core.geo.vector import mesh_frame, write_vector

    ds = load_any(args.dataset)
    sizes = ds.mesh_sizes if (ds.mesh_sizes > 0).all() else infer_sizes(ds.codes)
    bad = np.flatnonzero((sizes <= 0) | invalid_codes(ds.codes, np.maximum(sizes, 50)))
    if bad.size:
        raise InputError(
            args.dataset,
            "keys that are not JIS mesh codes",
            rows=(bad[:5] + 1).tolist(),
            values=ds.codes[bad[:5]].tolist(),
            n_bad=bad.size,
            expected="a run or dataset keyed by mesh code",
        )
    columns: dict[str, np.ndarray] = {f"e{i}": ds.vectors[:, i] for i in range(ds.vectors.shape[1])}
    for k, labels in sorted(ds.labels.items()):
        columns[f"{k}cluster"] = labels
    if ds.complemented is not None:
        columns["is_complemented"] = ds.complemented
    path = write_vector(mesh_frame(ds.codes, sizes, columns), args.out)
    print(f"{ds.n_meshes:,} meshes -> {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``cluster``, ``diff`` and ``vector`` commands."""
    v = sub.add_parser(
        "vector",
        help="write a run or release dataset as mesh polygons for QGIS (GeoPackage, GeoParquet, GeoJSON)",
        description=(
            "Mesh polygons (WGS 84) with code, mesh_size, the embedding e0.., released cluster labels and is_complemented; "
            "the format follows OUT's suffix: .gpkg, .parquet (GeoParquet) or .geojson."
        ),
    )
    v.add_argument("dataset", metavar="RUN_OR_DATASET", help="a folder written by 'train', its embeddings.csv, or a .geojson")
    v.add_argument("--out", required=True, help="output file (.gpkg, .parquet or .geojson)")
    v.set_defaults(func=cmd_vector)

    c = sub.add_parser(
        "cluster",
        help="joint clusters of runs / release datasets (one shared space), named by their stay patterns",
        description=(
            "k-means (seed 20210401) over every mesh of the given training runs and release datasets together, clusters "
            "numbered in the OpenUAS order on the pooled patterns and named by their stay patterns; writes "
            "dataset,key,cluster,name. With --release DIR: (re)build that release's joint clusters at k and store them "
            "in DIR/clusters/k<K>.json (released labels at 5/10/20 are kept unless --refit)."
        ),
    )
    c.add_argument(
        "inputs", nargs="*", metavar="RUN_OR_DATASET", help="a folder written by 'train', its embeddings.csv, or a .geojson"
    )
    knobs.K.add_to(c, "--k")
    c.add_argument("--release", metavar="DIR", help="cluster a whole release (its own datasets) and store the centres there")
    c.add_argument("--refit", action="store_true", help="with --release: fit anew even where released labels exist")
    c.add_argument(
        "--seed", type=knobs.SEED.check, default=KMEANS_SEED, help=f"k-means seed (default {KMEANS_SEED}, as released)"
    )
    c.add_argument("--out", metavar="CSV", help="write dataset,key,cluster,name here")
    c.set_defaults(func=cmd_cluster)

    d = sub.add_parser(
        "diff",
        help="compare two periods of the same meshes (pattern change, changed flag, joint clusters)",
        description=(
            "A and B are training runs or release datasets (.geojson). Per common mesh: embedding distance, pattern change "
            "(JS divergence of the predicted stay distributions), changed (above a threshold decided from the data unless "
            "--threshold), and the joint cluster in each period; prints a summary, writes "
            "key,distance,pattern_change,changed,cluster_a,cluster_b with --out."
        ),
    )
    d.add_argument("a", metavar="A")
    d.add_argument("b", metavar="B")
    knobs.K.add_to(d, "--k")
    knobs.CHANGE_THRESHOLD.add_to(d, "--threshold")
    d.add_argument("--out", metavar="CSV", help="write the per-mesh table here")
    d.set_defaults(func=cmd_diff)
