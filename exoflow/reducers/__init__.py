"""Reducers: per-chunk summaries folded into one on the client."""
