"""The page's input components, theme and small helpers for labels."""

from __future__ import annotations

import math
from pathlib import Path

import gradio as gr


class UploadedImage(gr.Image):
    """An image input that Gradio does not decode: the handler gets the uploaded file's path and
    the engine decodes it (audit_engine.images.open_image), with its pixel limit and its
    messages, so every odd file meets one decoder."""

    @classmethod
    def get_block_name(cls) -> str:
        return "image"  # the browser renders it as Gradio's image component

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.path is None:
            raise gr.Error("The image did not arrive as a file; upload it again.")
        return str(payload.path)


class _FiniteInput:
    """Numbers from a request are checked before Gradio's own handling: a string, null, NaN or
    infinity (which JSON clients send as text) gets a message that names the field."""

    def preprocess(self, payload):
        what = self.label or "a number"
        if payload is None:
            raise gr.Error(f"{what}: a value is missing")
        if isinstance(payload, bool):
            raise gr.Error(f"{what} must be a number, got {payload!r}")
        try:
            value = float(payload)
        except (TypeError, ValueError, OverflowError):
            raise gr.Error(f"{what} must be a number, got {str(payload)[:40]!r}") from None
        if not math.isfinite(value):
            raise gr.Error(f"{what} must be a finite number, got {str(payload)[:40]!r}")
        return super().preprocess(value)


class Slider(_FiniteInput, gr.Slider):
    pass


class Number(_FiniteInput, gr.Number):
    pass


# Gradio's default theme with WCAG 2.1 AA contrast: subdued text (slider ends, "- or -") at
# neutral-600 on white (7.6:1, was 1.9:1), white on a darker orange button and orange-700
# accents (5.2:1, was 3.6:1)
THEME = gr.themes.Default(primary_hue="orange").set(
    body_text_color_subdued="*neutral_600",
    body_text_color_subdued_dark="*neutral_300",
    button_primary_background_fill="*primary_700",
    button_primary_background_fill_hover="*primary_800",
    button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover_dark="*primary_800",
    button_primary_text_color="white",
    button_primary_text_color_dark="white",
    color_accent="*primary_700",  # the selected tab's text (orange-500 on white: 2.8:1)
)
# a focus ring on everything the keyboard reaches (Gradio's example buttons have none)
CSS = """:focus-visible { outline: 3px solid #1d4ed8 !important; outline-offset: 2px; }
#budget-slider input[type=number] { display: none; }
#report-file { position: absolute !important; width: 1px; height: 1px; overflow: hidden;
  clip-path: inset(50%); white-space: nowrap; }
@media (min-width: 1000px) { .prose table th, .prose table td { word-break: normal !important;
  overflow-wrap: normal !important; hyphens: manual; } }"""
# (the slider is log-scale: its own number box would show log10 of the budget; the box beside
# it, #budget-value, takes the budget itself; the report's download button is clicked by
# CLICK_REPORT, never seen; on a wide screen table cells break between words only)
# the upload area's visible text equals its accessible name (Gradio labels it so)
UPLOAD_TEXT = "Drop an image file here to upload"


def example_label(path: str) -> str:
    """A name a screen reader can say: "digit 7 (held-out #3517)", "photo: cat (not a digit)"."""
    stem = Path(path).stem
    if stem.startswith("digit-"):
        _, cls, idx = stem.split("-")
        return f"digit {cls} (held-out #{idx})"
    what = stem.removeprefix("ood-")
    kind = "printed text" if what == "text" else f"photo: {what}"
    return f"{kind} (not a digit)"


def slider_label(mode: str) -> str:
    return f"Privacy budget, {mode} on a log scale:  ◀ more privacy  ·  less privacy ▶"


# A DownloadButton downloads the file it already holds: the visible button makes the report,
# then this clicks the hidden DownloadButton that now holds it.
CLICK_REPORT = """() => { const el = document.querySelector('#report-file');
  if (el) { (el.tagName === 'BUTTON' ? el : (el.querySelector('button') || el)).click(); } }"""
