"""User text inside plotly figures, shown literally.

Plotly reads a subset of HTML in titles, axis ticks and annotations (``<b>``, ``<br>``, ``<a>``...)
and decodes ``&lt;``-style entities; Dash components show text as text. A cluster name a person
typed (``Nightlife <b>strip</b>``) must read the same in both, so it is escaped on its way into a
figure.
"""

from __future__ import annotations

import html

__all__ = ["plotly_text"]


def plotly_text(text: object) -> str:
    """``text`` with ``&``, ``<`` and ``>`` escaped, so plotly shows it as typed (never as markup)."""
    return html.escape(str(text), quote=False)
