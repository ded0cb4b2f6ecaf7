"""Mobility input: stay tables, raw GPS -> stays, local calendars and the privacy rule."""
