"""The Area2Vec method: 168 stay tokens, the embedding model and its trainer (free and anchored), anchor sets, metrics."""
