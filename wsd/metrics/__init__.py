"""Scores: detection, clustering and embedding quality."""
