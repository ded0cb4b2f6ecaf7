"""Callback values checked before any callback runs: a forged value of the wrong kind gets HTTP 400.

Every callback is a public endpoint (``POST /_dash-update-component``), so a value can be anything
JSON holds. The page's own components send values of a known kind: a ``dcc.Location``'s address
parts are text, a dropdown's, radio's, slider's, tab's or input box's value is one scalar (a list of
scalars for a multi-select, a checklist), a button's ``n_clicks`` a number. This guard reads those
kinds off the page's layout once and answers 400 to a request whose value for such a property is
of another kind, so that the callbacks' own checks (a dataset key among the catalog's, a k in its
range) only ever see values of the right type. Properties it does not know (stores, graph clicks,
map events) pass to the callbacks, which validate them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

Check = Callable[[Any], bool]


def _scalar(v: Any) -> bool:
    return v is None or (isinstance(v, (str, int, float)) and not isinstance(v, bool))


def _text(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _scalars(v: Any) -> bool:
    return v is None or (isinstance(v, list) and len(v) <= 10_000 and all(_scalar(x) for x in v))


def _range(v: Any) -> bool:
    return v is None or (isinstance(v, list) and len(v) <= 16 and all(_number(x) and x is not None for x in v))


def _checks(component: Any) -> dict[str, Check]:
    """The properties of one component whose kind is known, with their checks."""
    kind = type(component).__name__
    if kind == "Location":
        return {p: _text for p in ("search", "pathname", "hash", "href")}
    checks: dict[str, Check] = {"n_clicks": _number}
    if kind == "Dropdown":
        checks["value"] = _scalars if getattr(component, "multi", False) else _scalar
        checks["search_value"] = _text
    elif kind in ("RadioItems", "Tabs", "Slider", "Input", "Textarea"):
        checks["value"] = _scalar
    elif kind == "Checklist":
        checks["value"] = _scalars
    elif kind == "RangeSlider":
        checks["value"] = _range
    elif kind == "Interval":
        checks["n_intervals"] = _number
    return checks


def _walk(node: Any) -> Iterator[Any]:
    if isinstance(node, (list, tuple)):
        for child in node:
            yield from _walk(child)
        return
    if node is None or isinstance(node, (str, int, float)):
        return
    yield node
    yield from _walk(getattr(node, "children", None))


def known_kinds(layout: Any) -> dict[tuple[str, str], Check]:
    """``(component id, property) -> check`` for every component with a plain id in ``layout``."""
    out: dict[tuple[str, str], Check] = {}
    for comp in _walk(layout):
        ident = getattr(comp, "id", None)
        if isinstance(ident, str):
            for prop, check in _checks(comp).items():
                out[(ident, prop)] = check
    return out


def bad_values(body: Any, kinds: dict[tuple[str, str], Check]) -> list[str]:
    """What is wrong with a callback request's body: ``id.property`` of every value of the wrong kind."""
    if not isinstance(body, dict):
        return ["the request body"]
    bad: list[str] = []
    for part in ("inputs", "state"):
        items = body.get(part, [])
        if not isinstance(items, list):
            return [part]
        for item in items:
            for single in item if isinstance(item, list) else [item]:  # pattern-matching inputs come as lists
                if not isinstance(single, dict):
                    bad.append(part)
                    continue
                ident, prop = single.get("id"), single.get("property")
                check = kinds.get((ident, prop)) if isinstance(ident, str) and isinstance(prop, str) else None
                if check is not None and not check(single.get("value")):
                    bad.append(f"{ident}.{prop}")
    return bad


def install_input_guard(app: Any) -> None:
    """Check every callback request of the Dash ``app`` against the kinds its layout implies (else 400)."""
    from flask import Response, request

    state: dict[str, dict[tuple[str, str], Check]] = {}
    lock = threading.Lock()

    def kinds() -> dict[tuple[str, str], Check]:
        with lock:
            if "kinds" not in state:
                layout = app.layout() if callable(app.layout) else app.layout
                state["kinds"] = known_kinds(layout)
            return state["kinds"]

    @app.server.before_request
    def _guard() -> Any:
        if request.method != "POST" or not request.path.endswith("/_dash-update-component"):
            return None
        bad = bad_values(request.get_json(silent=True), kinds())
        if bad:
            log.warning("callback request refused: values of the wrong kind for %s", ", ".join(bad[:5]))
            return Response(
                f"bad request: values of the wrong kind for {', '.join(bad[:5])}\n", status=400, mimetype="text/plain"
            )
        return None
