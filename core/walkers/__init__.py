"""Walkers: trajectory models (RAW, "Regions are who walk them") -> user and region embeddings.

Heavy imports (torch, scikit-learn) happen inside the functions that need them.
"""
