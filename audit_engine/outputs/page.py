"""The one HTML page skeleton of every report (an audit's, a batch's, a data set's budget):
self-contained (images embedded, plotly.js inline in the first figure), readable offline
and printable, with the accessibility the dashboard promises (``lang``, table headers with
``scope``, text alternatives on images)."""

from __future__ import annotations

import datetime
import html
from pathlib import Path
from typing import Iterable, Mapping

from .. import __version__
from ..files import package_versions

__all__ = [
    "STYLE",
    "html_page",
    "table",
    "parameter_sections",
    "generated_at",
    "figure_html",
    "public_value",
    "public_prior",
]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: center; font-size: 0.9em; }
th[scope='row'] { text-align: left; font-weight: normal; }
td.left { text-align: left; }
img { image-rendering: pixelated; width: 72px; height: 72px; }
img.tile, img.grid { width: auto; height: auto; max-width: 100%; }
img.tile { max-width: 224px; }
.warn { border: 2px solid #b00020; padding: 0.5em; }
body { max-width: 1100px; }
td.verdict { min-width: 10em; max-width: 16em; }
tr.evidence td { font-size: 0.85em; border-top: none; }
tr.evidence p { margin: 0.2em 0; }
td, th { overflow-wrap: normal; word-break: normal; hyphens: manual; }
.plotly-graph-div { max-width: 100%; }
@media print {
  @page { size: A4; margin: 12mm; }
  body { margin: 0; max-width: none; font-size: 10pt; }
  table { page-break-inside: auto; width: 100%; }
  tr { page-break-inside: avoid; }
  img.tile { max-width: 200px; }
  img { width: 64px; height: 64px; }
  .plotly-graph-div { page-break-inside: avoid; max-width: 180mm; }
  h2 { page-break-after: avoid; }
}
""".strip()


def generated_at() -> str:
    """The date (UTC) a report states it was made."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def table(rows: Mapping[str, object], caption: str | None = None) -> str:
    """A two-column table, one row per key (its header cell ``scope='row'``)."""
    esc = html.escape
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    body = "".join(
        f"<tr><th scope='row'>{esc(str(k))}</th><td class='left'>{esc(str(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table>{cap}{body}</table>"


def public_value(value: object) -> str:
    """A parameter as a reader sees it: yes/no for booleans, "default" for None, and a local
    path by its last part only (a report never shows the server's folders)."""
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if isinstance(value, (str, Path)) and Path(text).is_absolute():
        return Path(text).name or text
    return text


def public_prior(name: str, source: str) -> str:
    """A prior by its name and source without server paths: "embedded (prior-mnist32)",
    "google/ddpm-cifar10-32", "mine" (a local folder)."""
    n, s = public_value(name), public_value(source)
    return n if n == s else f"{n} ({s})"


def parameter_sections(params: Mapping[str, object]) -> str:
    """The "Parameters" and "Versions" sections every report ends with."""
    versions = {"audit_engine": __version__, **package_versions()}
    shown = {k: public_value(v) for k, v in params.items()}
    return f"<h2>Parameters</h2>{table(shown)}<h2>Versions</h2>{table(versions)}"


def figure_html(figures: Iterable) -> str:
    """Plotly figures, plotly.js inline once (with the first)."""
    return "".join(
        fig.to_html(
            full_html=False,
            include_plotlyjs="inline" if i == 0 else False,
            config={"displaylogo": False},
        )
        for i, fig in enumerate(figures)
    )


def html_page(title: str, sections: Iterable[str]) -> str:
    """A complete page: doctype, ``lang='en'``, charset, title, the shared style, the title
    as its heading, then the sections (HTML strings) in order."""
    esc = html.escape
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title>\n<style>\n{STYLE}\n</style></head><body>\n"
        f"<h1>{esc(title)}</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
