"""The OpenUAS release layout: datasets, models, anchor data and utility files on disk."""
