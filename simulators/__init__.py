"""Simulated parks, enterprises and meters, deterministic from a seed."""
