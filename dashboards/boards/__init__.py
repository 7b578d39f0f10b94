"""The dashboards, one module each: panel definitions only (see :mod:`dashboards.panels`)."""
