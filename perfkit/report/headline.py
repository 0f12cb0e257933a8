"""A report's headline: the few figures that `reports/index.html` shows for it.

A notebook's last cell calls :func:`headline`. It shows a small table in the
notebook and leaves a machine-readable copy in the cell's output under
:data:`HEADLINE_MIME`, which ``perfkit report`` reads back to build the index.
"""
from __future__ import annotations

import html
import json
from typing import Any, Mapping

HEADLINE_MIME = "application/vnd.perfkit.headline+json"


def headline_bundle(title: str, figures: Mapping[str, Any], run_id: str | None = None,
                    note: str | None = None) -> dict[str, Any]:
    """The display bundle: HTML for people, JSON for the index (values kept as given)."""
    shown = {str(k): v for k, v in figures.items()}
    data = {"title": title, "run_id": run_id, "note": note, "figures": shown}
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td>{html.escape(str(v))}</td></tr>" for k, v in shown.items()
    )
    parts = [f"<div class='perfkit-headline'><h3>{html.escape(title)}</h3>"]
    if run_id:
        parts.append(f"<p>run <code>{html.escape(run_id)}</code></p>")
    parts.append(f"<table>{rows}</table>")
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    parts.append("</div>")
    return {"text/html": "".join(parts), "text/plain": json.dumps(data, default=str),
            HEADLINE_MIME: json.loads(json.dumps(data, default=str))}


def headline(title: str, figures: Mapping[str, Any], run_id: str | None = None,
             note: str | None = None) -> None:
    """Show the headline figures and record them for the report index.

    ``figures`` maps a short name to a value that already carries its unit and
    sample count where it matters, e.g. ``{"P99": "41.2 ms (n=6,000)"}``.
    """
    from IPython.display import display

    display(headline_bundle(title, figures, run_id, note), raw=True)
