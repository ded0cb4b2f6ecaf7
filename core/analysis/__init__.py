"""Analysis of embeddings: clustering, stay-pattern charts, similar areas, period diffs."""
