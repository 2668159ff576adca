"""Feedback → training data, as pure functions over rows (no I/O), in the formats TRL expects.

The I/O around them (reading the database, writing files and manifests) lives in `export.py`.
"""
