"""The figure style: one palette, titles that state n and units, and alt text for the HTML reports.

Figures in :mod:`perfkit.plots` take their colours from :data:`PALETTE` (by role
where a colour means something: :data:`OK`, :data:`ERROR`, :data:`P50`,
:data:`P99`, :data:`LIMIT`, :data:`ESTIMATE`), and state their sample count and
unit with :func:`title` / :func:`with_n`. In a report, each figure's image
carries alt text: :func:`describe` sets it explicitly, otherwise
:func:`alt_text` reads it from the figure's titles and axis labels;
:func:`enable_alt_text` (run in the report kernel by
:mod:`perfkit.report.render`) attaches it to the PNG the notebook shows.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The palette (seaborn's "deep" colours, which the figures already used), in cycle order.
PALETTE: tuple[str, ...] = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
                            "#8c8c8c", "#ccb974", "#64b5cd")
BLUE, ORANGE, GREEN, RED, PURPLE, BROWN, PINK, GREY, OLIVE, CYAN = PALETTE
#: Colours by meaning: ok requests, errors, the P50 and P99 lines, a limit (SLO, bound, margin edge),
#: an estimate (not measured), the reference (FP32, the intended rate), a bar to reach (MLPerf's 99 %).
OK, ERROR, P50, P99, LIMIT, ESTIMATE, REFERENCE, BAR = BLUE, RED, ORANGE, GREEN, RED, "#bbbbbb", "#333333", "#c9a227"
#: A judge's decisions and a change's class (the report's pass / fail / warn colours); muted and light
#: tones for context (error bars, connecting lines, phases, notes).
PASS, FAIL, INCONCLUSIVE, MUTED, LIGHT = GREEN, RED, ORANGE, GREY, "#a9bedb"

_ALT_KEY = "perfkit_alt"


def color(k: int) -> str:
    """The ``k``-th palette colour (wraps around): series without a fixed meaning."""
    return PALETTE[k % len(PALETTE)]


def with_n(text: str, n: int | None = None, unit: str | None = None) -> str:
    """``with_n("Latency", 6000, "ms") == "Latency (ms, n=6,000)"``: a title or legend label with its basis."""
    parts = [p for p in (unit, f"n={n:,}" if n is not None else None) if p]
    return f"{text} ({', '.join(parts)})" if parts else text


def axis_label(column: str) -> str:
    """A column name as an axis label, as the report tables write it: ``"p99_ms" -> "P99 (ms)"``."""
    from perfkit.report.style import header_label, split_unit

    base, unit = split_unit(column)
    return f"{header_label(base)} ({unit})" if unit else header_label(column)


def title(ax: "Axes", text: str, n: int | None = None, unit: str | None = None, **kwargs: Any) -> None:
    """Set the axes' title with its sample count and unit (see :func:`with_n`)."""
    ax.set_title(with_n(text, n, unit), **kwargs)


def describe(fig: "Figure", text: str) -> "Figure":
    """Give the figure explicit alt text (what it shows, in one sentence); returns the figure."""
    setattr(fig, _ALT_KEY, text)
    return fig


def alt_text(fig: "Figure") -> str:
    """The figure's alt text: set by :func:`describe`, else its titles and axis labels."""
    explicit = getattr(fig, _ALT_KEY, None)
    if explicit:
        return str(explicit)
    parts: list[str] = []
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text():
        parts.append(suptitle.get_text())
    for ax in fig.axes:
        titles = [t for t in (ax.get_title("left"), ax.get_title(), ax.get_title("right")) if t]
        axes = [f"{name}: {label}" for name, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())) if label]
        if titles or axes:
            parts.append(" ".join(titles) + (f" ({'; '.join(axes)})" if axes else ""))
    return ". ".join(p.strip() for p in parts if p.strip()) or "figure"


def enable_alt_text() -> None:
    """In an IPython kernel with the inline backend, show every figure's PNG with its alt text.

    The PNG formatter the inline backend registered for ``Figure`` is wrapped so
    the output's metadata carries ``{"alt": ...}``; the report template writes it
    into the ``<img>`` tag. Outside IPython this does nothing.
    """
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    import matplotlib
    from matplotlib.figure import Figure

    if "inline" in matplotlib.get_backend():
        import matplotlib_inline.backend_inline  # noqa: F401  (registers the inline figure formatters)
    png = shell.display_formatter.formatters["image/png"]
    try:
        printer = png.lookup_by_type(Figure)
    except KeyError:
        return
    if getattr(printer, "with_alt_text", False):
        return

    def with_alt(fig: Figure) -> Any:
        data = printer(fig)
        return (data, {"alt": alt_text(fig)}) if data is not None else None

    with_alt.with_alt_text = True  # type: ignore[attr-defined]
    png.for_type(Figure, with_alt)
