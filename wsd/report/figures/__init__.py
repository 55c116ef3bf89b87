"""Matplotlib figures of the report (pure: arrays in, figures out)."""
