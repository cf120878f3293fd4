"""The Mini App (FastAPI routes, Jinja2 templates, htmx) over core/. Not yet available."""
