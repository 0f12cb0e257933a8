"""Reports: notebooks executed by papermill, converted to self-contained HTML, and their index."""
from perfkit.report.headline import HEADLINE_MIME, headline

__all__ = ["HEADLINE_MIME", "headline"]
