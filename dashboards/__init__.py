"""Grafana dashboards, alert rules and provisioning generated from code."""
