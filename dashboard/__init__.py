"""The Dash app: a thin layer over ``core`` (ids, layout, figures, callbacks)."""
