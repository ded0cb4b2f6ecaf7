"""Every component id, once."""

DATASET = "dataset-select"
K = "k-select"
MAP = "cluster-map"
LEGEND = "cluster-legend"
SUMMARY = "dataset-summary"
