"""Every callback answers forged values with a 2xx or a 4xx, never a server error (issue 17).

The page's callbacks are public endpoints: anyone can POST ``/_dash-update-component`` with any
value for any input. This sends every (non-background) callback of the app, over a small demo
release, a set of forged values in each of its inputs and states, and collects every 5xx.
"""

from __future__ import annotations

import json

import pytest

FORGED = [None, "abc", "", -1, 10**9, 1e308, True, {"x": 1}, [None, "a", 7], "../../../etc/passwd", "demo/../../x"]


def _ref(text: str) -> dict:
    ident, prop = text.rsplit(".", 1)
    return {"id": json.loads(ident) if ident.startswith("{") else ident, "property": prop}


def _outputs(spec: str) -> list[dict] | dict:
    if spec.startswith("..") and spec.endswith(".."):
        return [_ref(p) for p in spec[2:-2].split("...")]
    return _ref(spec)


def _wild(ref: dict) -> bool:
    return isinstance(ref["id"], dict)


@pytest.fixture(scope="module")
def client(tiny_release, tmp_path_factory):
    import shutil

    from app import create_app

    data = tmp_path_factory.mktemp("fuzz") / "data"
    shutil.copytree(tiny_release, data)
    app = create_app(data, basemap=None)
    c = app.server.test_client()
    assert c.get("/").status_code == 200
    return c


def test_forged_callback_values_never_cause_a_server_error(client):
    deps = client.get("/_dash-dependencies").json
    tried, failures = 0, []
    for dep in deps:
        if dep.get("clientside_function") or dep.get("background"):
            continue
        outputs = _outputs(dep["output"])
        refs = dep["inputs"] + dep["state"]
        if any(_wild(r) for r in refs) or any(_wild(o) for o in (outputs if isinstance(outputs, list) else [outputs])):
            continue
        n_in = len(dep["inputs"])
        for target in range(len(refs)):
            for value in FORGED:
                values = [value if i == target else None for i in range(len(refs))]
                items = [{"id": r["id"], "property": r["property"], "value": v} for r, v in zip(refs, values, strict=True)]
                changed = refs[target] if target < n_in else refs[0]
                body = {
                    "output": dep["output"],
                    "outputs": outputs,
                    "inputs": items[:n_in],
                    "state": items[n_in:],
                    "changedPropIds": [f"{changed['id']}.{changed['property']}"],
                }
                r = client.post("/_dash-update-component", json=body)
                tried += 1
                if r.status_code >= 500:
                    failures.append(
                        f"{dep['output']} <- {refs[target]['id']}.{refs[target]['property']} = {value!r}: {r.status_code}"
                    )
    assert tried > 200
    assert failures == [], "\n".join(failures[:40]) + f"\n({len(failures)} of {tried} requests failed)"


def test_guard_reads_kinds_off_the_layout_and_names_bad_values():
    from dash import dcc, html

    from dashboard.guard import bad_values, known_kinds

    layout = html.Div(
        [
            dcc.Location(id="url"),
            html.Div([dcc.Dropdown(id="ds", options=["a", "b"]), dcc.Dropdown(id="many", multi=True, options=["a"])]),
            dcc.RadioItems(id="k", options=[5, 10]),
            dcc.Store(id="store"),
            html.Button("go", id="go"),
        ]
    )
    kinds = known_kinds(layout)

    def body(*items):
        return {"inputs": [{"id": i, "property": p, "value": v} for i, p, v in items], "state": []}

    good = body(("url", "search", "?ds=a"), ("ds", "value", "a"), ("many", "value", ["a", "b"]), ("k", "value", 10))
    assert bad_values(good, kinds) == []
    assert bad_values(body(("store", "data", {"any": ["thing"]}), ("go", "n_clicks", 3)), kinds) == []
    assert bad_values(body(("url", "search", 7), ("ds", "value", {"x": 1})), kinds) == ["url.search", "ds.value"]
    assert bad_values(body(("many", "value", [{"x": 1}]), ("k", "value", [5]), ("go", "n_clicks", "9")), kinds) == [
        "many.value",
        "k.value",
        "go.n_clicks",
    ]
    assert bad_values(["not", "a", "dict"], kinds) == ["the request body"]
    assert bad_values({"inputs": "x"}, kinds) == ["inputs"]
