"""What every part of parkenergy shares.

Settings, the database schema and its migrations, the registry of parks,
enterprises and meters, energy carriers and units of measurement.
"""
