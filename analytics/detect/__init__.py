"""Detectors: pure rules (<name>.py) and the queries that feed them (<name>_store.py)."""
