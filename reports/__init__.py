"""The monthly energy-saving report: figures from the api views, charts, HTML and PDF."""
