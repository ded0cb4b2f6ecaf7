"""Figure specs, the cluster palette and the cluster legend as plain data (no browser)."""

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.figures import DURATION_LABELS, PATTERN_VALUES, class_charts, pattern_chart, pattern_pair
from dashboard.palette import COMPLEMENTED_ALPHA, OWN_ALPHA, PALETTE, cielab, min_distance, tile_css


def _chart() -> np.ndarray:
    return np.random.default_rng(0).random((2, 12, 7))


@pytest.mark.parametrize(
    ("values", "words"),
    [("share", "share of stays (one mesh)"), ("mean", "mean per mesh"), ("sum", "sum of the meshes' shares"), ("stays", "stays")],
)
def test_pattern_chart_names_its_values_in_plain_words(values, words):
    fig = go.Figure(pattern_chart(_chart(), "t", values=values))
    title = fig.layout.yaxis.title.text
    assert words in title and "SPEC" not in title and "§" not in title
    # Shares are percentages; a sum of shares or a count is a plain number.
    assert (fig.layout.yaxis.tickformat == ".2~%") == (values in ("share", "mean"))
    # Hover says what a bar is, how a long stay is counted and how days are weighted.
    hover = fig.data[0].hovertemplate
    assert PATTERN_VALUES[values][1] in hover and "every 2-hour bin it spans" in hover and "2/7" in hover


def test_a_chart_of_unnamed_values_is_never_called_a_share_above_one():
    small = go.Figure(pattern_chart(_chart() / 10, "t"))  # stacked bars <= 0.7
    assert small.layout.yaxis.title.text == "share of stays" and small.layout.yaxis.tickformat == ".2~%"
    big = go.Figure(pattern_chart(_chart() * 50, "t"))  # a sum over meshes, or counted stays
    assert "share" not in big.layout.yaxis.title.text and not big.layout.yaxis.tickformat


def test_sum_and_mean_charts_are_titled_differently():
    titles = {v: go.Figure(pattern_chart(_chart(), "t", values=v)).layout.yaxis.title.text for v in PATTERN_VALUES}
    assert len(set(titles.values())) == len(PATTERN_VALUES)
    assert "share" not in titles["stays"] and not titles["sum"].startswith("share")
    with pytest.raises(ValueError, match="values must be one of"):
        pattern_chart(_chart(), "t", values="median")


def test_x_titles_are_short_enough_for_half_a_narrow_chart():
    # The narrowest pattern chart (a diff pair at 1024 px) has panels of about 170 px: a title of
    # up to 16 characters (about 6.5 px each at 12 px) fits under each without overprinting the other.
    for spec in (pattern_chart(_chart(), "t"), *pattern_pair(_chart(), _chart(), "a", "b")):
        fig = go.Figure(spec)
        for axis in (fig.layout.xaxis, fig.layout.xaxis2):
            assert len(axis.title.text) <= 16


def test_stay_length_legend_shows_every_class_in_rows_below_the_chart():
    for spec in (pattern_chart(_chart(), "t"), class_charts(np.stack([_chart()] * 3), ("a", "b", "c"), "sum")):
        fig = go.Figure(spec)
        legend = fig.layout.legend
        # Horizontal and below the plot: it wraps into rows instead of scrolling a vertical list.
        assert legend.orientation == "h" and legend.yref == "container" and legend.y == 0 and legend.yanchor == "bottom"
        assert [t.name for t in fig.data if t.showlegend] == list(DURATION_LABELS)


def test_class_charts_say_what_their_values_are():
    cls = np.stack([_chart()] * 2)
    assert "sum of the meshes' shares" in go.Figure(class_charts(cls, ("a", "b"), "sum")).layout.title.text
    assert "mean per mesh" in go.Figure(class_charts(cls, ("a", "b"), "mean")).layout.title.text


def test_cielab_of_known_colours():
    lab = cielab(["#ffffff", "#000000", "#ff0000"])
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)  # sRGB red, D65


def test_the_first_k_cluster_colours_are_well_separated_for_every_k():
    # The first k colours colour a map of k clusters. Before: 7.2 at k = 20 (three blue-violets), 1.7 from k = 30.
    assert len(PALETTE) == 50 and len(set(PALETTE)) == 50
    assert min_distance(PALETTE[:20]) >= 25.0
    for k in range(2, 51):
        assert min_distance(PALETTE[:k]) >= 20.0, k
    # The first ten are the familiar tab10 colours.
    assert PALETTE[:3] == ("#1f77b4", "#ff7f0e", "#2ca02c")


def test_tile_css_is_the_colour_the_map_draws():
    assert tile_css("#ff8000", OWN_ALPHA) == "rgba(255, 128, 0, 0.717)"
    assert tile_css("#ff8000", COMPLEMENTED_ALPHA) == "rgba(255, 128, 0, 0.367)"


class _Summary:
    """A catalog stand-in: only what the legend reads."""

    def __init__(self, sizes):
        self.sizes = sizes

    def cluster_summary(self, key, k):
        return [{"cluster": c, "meshes": n, "description": f"name {c}"} for c, n in enumerate(self.sizes[:k])]


def _texts(component) -> list[str]:
    out = []
    children = getattr(component, "children", None)
    if isinstance(children, str):
        out.append(children)
    elif isinstance(children, list):
        for child in children:
            out += _texts(child)
    elif children is not None:
        out += _texts(children)
    return out


def test_count_of_says_one_mesh_and_two_meshes():
    from dashboard.figures import count_of, transition_heatmap

    assert [count_of(n, "mesh", "meshes") for n in (0, 1, 2, 1016)] == ["0 meshes", "1 mesh", "2 meshes", "1,016 meshes"]
    assert count_of(1, "cluster") == "1 cluster" and count_of(3, "cluster") == "3 clusters"
    assert "1 mesh in both" in go.Figure(transition_heatmap(np.array([[1, 0], [0, 0]]), "a", "b")).layout.title.text


def test_cluster_legend_rows_keep_the_count_on_one_line_and_show_both_tile_colours():
    from dashboard.components import legend

    (ul,) = legend(_Summary([4, 1, 0, 481]), "ds", 4)
    rows = [li for li in ul.children if li.className == "legend-item"]
    counts = [next(s for s in li.children if s.className == "legend-count") for li in rows]
    assert [c.children for c in counts] == ["0: 4 meshes", "1: 1 mesh", "2: 0 meshes", "3: 481 meshes"]
    assert all(c.style["whiteSpace"] == "nowrap" and c.style["flex"] == "none" for c in counts)
    # Each swatch: left half as the map draws the cluster's own meshes, right half as its complemented (paler) ones.
    swatch = rows[3].children[0]
    own, pale = tile_css(PALETTE[3], OWN_ALPHA), tile_css(PALETTE[3], COMPLEMENTED_ALPHA)
    assert swatch.style["background"] == f"linear-gradient(90deg, {own} 50%, {pale} 50%)"
    note = " ".join(_texts(ul.children[-1]))
    assert "paler" in note and "complemented" in note
    assert ul.to_plotly_json()["props"]["aria-label"] == "4 clusters"


def test_the_transition_matrix_shows_typed_names_as_text():
    from dashboard.figures import transition_heatmap

    spec = transition_heatmap(np.array([[3, 1], [0, 2]]), "A", "B", names=["Nightlife <b>strip</b>", "homes"])
    trace, layout = spec["data"][0], spec["layout"]
    assert trace["y"][0] == "0: Nightlife <b>strip</b>"  # the category itself (clicks carry it)
    for axis in ("xaxis", "yaxis"):
        assert layout[axis]["tickvals"] == trace["x"]
        assert layout[axis]["ticktext"][0] == "0: Nightlife &lt;b&gt;strip&lt;/b&gt;"
