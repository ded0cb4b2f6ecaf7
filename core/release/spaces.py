"""Which datasets share a space, and the joint clusters of each space at any k.

- A release's own datasets (no training metrics beside them) form the release's space: they were
  trained anchored to its anchor set. They are the space's *members*: its clusters are fitted on them.
- A dataset trained here anchored to release R (its metrics name ``anchor_release``) lives in R's
  space and is *assigned* to R's stored clusters, never fitted.
- A dataset trained free is a space of its own (``free:<release>/<name>``), fitted on itself.

Clusters are stored with the space's release (:mod:`core.release.clusters`); released labels at
5/10/20 are kept as they are (a real OpenUAS release's labels are already joint).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.analysis.joint import JointClusters, SpacePart, fit_joint, from_released
from core.release.clusters import clusters_file, load_joint, release_root_of, save_joint
from core.release.layout import DatasetRef, ReleaseDataset


@dataclass(frozen=True)
class Space:
    """A shared embedding space.

    Attributes:
        name: the space's name (the anchor release, or ``free:<release>/<dataset>``).
        root: the release folder its clusters are stored in.
        space_dir: sub-folder of ``clusters/`` for a free dataset's own space (``None`` for a release).
        members: the datasets (``release/name`` keys) the clusters are fitted on.
    """

    name: str
    root: Path
    space_dir: str | None
    members: tuple[str, ...]

    @property
    def free(self) -> bool:
        return self.name.startswith("free:")


def spaces_of(refs: Mapping[str, DatasetRef], metrics: Callable[[str], dict | None]) -> dict[str, Space]:
    """The space of every dataset (keys ``release/name``), from the training metrics beside them."""
    roots = {ref.release: release_root_of(ref.geojson) for ref in refs.values()}
    own: dict[str, list[str]] = {}
    placed: dict[str, tuple[str, Path, str | None]] = {}
    for key, ref in sorted(refs.items()):
        m = metrics(key)
        if m is None:  # a release's own dataset
            own.setdefault(ref.release, []).append(key)
            placed[key] = (ref.release, roots[ref.release], None)
        elif m.get("anchored") and m.get("anchor_release") in roots:
            anchor = str(m["anchor_release"])
            placed[key] = (anchor, roots[anchor], None)
        elif m.get("anchored"):
            placed[key] = (f"anchored:{m.get('anchor_release')}", roots[ref.release], f"anchored-{m.get('anchor_release')}")
        else:
            placed[key] = (f"free:{key}", roots[ref.release], f"free-{ref.name}")
    out: dict[str, Space] = {}
    for key, (name, root, sub) in placed.items():
        members = tuple(own.get(name, [])) if sub is None else (key,) if name.startswith("free:") else ()
        if not members:  # anchored to a release that is not here: fitted on its own datasets so far
            members = tuple(k for k, v in placed.items() if v[0] == name)
        out[key] = Space(name, root, sub, members)
    return out


def joint_clusters(
    space: Space,
    k: int,
    load: Callable[[str], ReleaseDataset],
    fallback_dir: Path | None = None,
) -> JointClusters:
    """The space's clusters at ``k``: read from the release, or computed once and stored there.

    Released labels (present at ``k`` in every member) are kept; any other k is fitted jointly.
    A release folder that cannot be written keeps the file under ``fallback_dir`` instead.

    Args:
        space: from :func:`spaces_of`.
        k: number of clusters.
        load: reads a dataset by key.
        fallback_dir: where to store when the release folder is read-only.
    """
    path, alt = _paths(space, k, fallback_dir)
    for p in (path, alt):
        if p is not None:
            found = load_joint(p)
            if found is not None and found.space == space.name:
                return found
    data = {key: load(key) for key in space.members}
    parts = {key: SpacePart(ds.vectors, ds.decoder, ds.complemented, ds.labels.get(k)) for key, ds in data.items()}
    released = bool(parts) and all(p.labels is not None for p in parts.values())
    jc = from_released(parts, k, space.name) if released else fit_joint(parts, k, space.name)
    try:
        save_joint(path, jc)
    except OSError:
        if alt is not None:
            save_joint(alt, jc)
    return jc


def _paths(space: Space, k: int, fallback_dir: Path | None) -> tuple[Path, Path | None]:
    """The release's clusters file for ``k`` and the fallback's (``None`` without a fallback folder)."""
    alt = clusters_file(fallback_dir, k, space.name) if fallback_dir is not None else None
    return clusters_file(space.root, k, space.space_dir), alt


def stored_path(space: Space, k: int, fallback_dir: Path | None = None) -> Path:
    """The file holding the space's clusters at ``k`` (the release's, else the fallback's if that exists)."""
    path, alt = _paths(space, k, fallback_dir)
    return alt if not path.exists() and alt is not None and alt.exists() else path
