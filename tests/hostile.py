"""Hostile and malformed inputs for the dashboard, built on the fly (nothing large in git).

Each case is (name, file bytes or None, overrides of the /audit arguments, expectation):
expectation is a regular expression the user's error message must match, or None when the
input must be handled (an audit comes back).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

MARKER = "zz-private-name-7f3a"  # file names carry this: it must never reach the logs


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zero_png(width: int, height: int) -> bytes:
    """A 1-bit all-black PNG of any size, streamed: tiny on disk, huge when decoded."""
    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def _digit(size: int = 64, mode: str = "L") -> Image.Image:
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    a = (((r > size * 0.2) & (r < size * 0.35)) * 255).astype(np.uint8)
    return Image.fromarray(a, "L").convert(mode)


def _exif_jpeg() -> bytes:
    img = _digit(64, "RGB").crop((0, 0, 64, 32))  # 64 wide, 32 high
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees when shown
    exif[0x010E] = f"description {MARKER}"  # ImageDescription: metadata that must not survive
    exif[0x013B] = f"artist {MARKER}"
    return _jpeg(img, exif=exif.tobytes())


def _animated_gif() -> bytes:
    frames = [_digit(32, "L").rotate(a).convert("P") for a in (0, 30, 60)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buf.getvalue()


def _palette_transparent() -> bytes:
    img = _digit(48, "P")
    img.info["transparency"] = 0
    return _png(img, transparency=0)


def _rgba_transparent() -> bytes:
    img = _digit(48, "RGBA")
    a = np.array(img)
    a[..., 3] = np.where(a[..., 0] > 0, 255, 0)
    return _png(Image.fromarray(a, "RGBA"))


def _png16() -> bytes:
    a = np.array(_digit(40, "L")).astype(np.uint16) * 257
    return _png(Image.fromarray(a, "I;16"))


def _float_tiff_nan() -> bytes:
    a = np.array(_digit(32, "L"), dtype=np.float32) / 255
    a[0, :5] = np.nan
    a[1, :5] = np.inf
    buf = io.BytesIO()
    Image.fromarray(a, "F").save(buf, format="TIFF")
    return buf.getvalue()


def _polyglot() -> bytes:
    """A valid PNG with an HTML page and a zip appended: decodes as the PNG, nothing else."""
    html = b"<html><script>alert('polyglot')</script></html>"
    return _png(_digit(32)) + html + b"PK\x03\x04" + b"\x00" * 26


def file_cases() -> list[tuple[str, bytes, str | None]]:
    """(file name, bytes, expected error regex or None when it must be handled)."""
    good_png = _png(_digit(64))
    good_jpeg = _jpeg(_digit(64, "RGB"))
    unreadable = r"(?i)cannot be read as an image|not an image|unsupported|cannot identify"
    return [
        ("empty.png", b"", r"(?i)empty|no data|cannot be read"),
        ("truncated.png", good_png[: len(good_png) // 2], unreadable + "|truncated|broken"),
        ("truncated.jpg", good_jpeg[: len(good_jpeg) // 3], unreadable + "|truncated|broken"),
        ("header-only.png", good_png[:40], unreadable + "|truncated|broken"),
        ("text.png", b"just some text, not an image\n" * 10, unreadable),
        (
            "page.png",
            b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
            unreadable,
        ),
        (
            "drawing.png",
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b'<script>alert(1)</script><rect width="10" height="10"/></svg>',
            unreadable,
        ),
        (
            "drawing.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b'<rect width="10" height="10"/></svg>',
            unreadable,
        ),
        ("random.png", np.random.default_rng(0).bytes(4096), unreadable),
        ("bomb.png", zero_png(60000, 60000), r"(?i)pixels.*limit|too large|decompression bomb"),
        ("huge-20000.png", zero_png(20000, 20000), r"(?i)pixels.*limit|too large"),
        ("polyglot.png", _polyglot(), None),
        ("one-pixel.png", _png(Image.new("L", (1, 1), 200)), None),
        ("wide-1x5000.png", _png(Image.new("L", (5000, 1), 128)), None),
        ("tall-5000x1.png", _png(Image.new("L", (1, 5000), 128)), None),
        ("cmyk.jpg", _jpeg(_digit(64, "CMYK")), None),
        ("sixteen-bit.png", _png16(), None),
        ("palette-transparent.png", _palette_transparent(), None),
        ("rgba-transparent.png", _rgba_transparent(), None),
        ("animated.gif", _animated_gif(), None),
        ("exif-rotated.jpg", _exif_jpeg(), None),
        ("rgb-colour.png", _png(_digit(64, "RGB")), None),
        ("gray-alpha.png", _png(_digit(64, "LA")), None),
        ("bilevel.png", _png(_digit(64, "1")), None),
        ("float-nan.tiff", _float_tiff_nan(), r"NaN or infinite"),
        (
            "bitmap.bmp",
            (lambda b: (_digit(32).save(b, format="BMP"), b.getvalue())[1])(io.BytesIO()),
            None,
        ),
    ]


def _audit_args(**over):
    base = dict(
        prior="embedded",
        mode="eps",
        delta=1e-5,
        slider=2.0,
        sampler="ddim",
        steps=2,
        trials=1,
        seed=0,
    )
    base.update(over)
    return base


def parameter_cases() -> list[tuple[str, dict, str]]:
    """(name, /audit arguments, expected error regex) with a valid image."""
    # JSON has no NaN or infinity: a client sends them as strings, or null
    return [
        ("slider NaN", _audit_args(slider="NaN"), r"(?i)finite|number"),
        ("slider +inf", _audit_args(slider="Infinity"), r"(?i)finite|number|between"),
        ("slider null", _audit_args(slider=None), r"(?i)finite|number|budget"),
        ("slider text", _audit_args(slider="lots"), r"(?i)finite|number|budget"),
        ("slider far above the range", _audit_args(slider=400.0), r"(?i)between|range|maximum"),
        ("slider far below the range", _audit_args(slider=-400.0), r"(?i)between|range|minimum"),
        ("delta 0", _audit_args(delta=0.0), r"(?i)delta"),
        ("delta 1", _audit_args(delta=1.0), r"(?i)delta"),
        ("delta negative", _audit_args(delta=-1e-5), r"(?i)delta|minimum"),
        ("delta 2", _audit_args(delta=2.0), r"(?i)delta"),
        ("delta NaN", _audit_args(delta="nan"), r"(?i)delta"),
        ("delta null", _audit_args(delta=None), r"(?i)delta"),
        ("delta 1e400", _audit_args(delta="1e400"), r"(?i)delta"),
        ("steps 0", _audit_args(steps=0), r"(?i)steps|minimum"),
        ("steps negative", _audit_args(steps=-5), r"(?i)steps|minimum"),
        ("steps absurd", _audit_args(steps=10**9), r"(?i)steps|maximum"),
        ("steps fractional", _audit_args(steps=2.5), r"(?i)steps|whole"),
        ("trials 0", _audit_args(trials=0), r"(?i)trials|minimum"),
        ("trials absurd", _audit_args(trials=10**6), r"(?i)trials|maximum"),
        ("seed huge", _audit_args(seed=2**70), r"(?i)seed"),
        ("seed negative", _audit_args(seed=-1), r"(?i)seed"),
        ("unknown prior id", _audit_args(prior="nobody/no-such-prior"), r"(?i)prior|choices"),
        ("prior as a local path", _audit_args(prior="/etc"), r"(?i)prior|choices"),
        (
            "prior path traversal",
            _audit_args(prior="../../assets/prior-mnist32"),
            r"(?i)prior|choices",
        ),
        ("unknown sampler", _audit_args(sampler="euler"), r"(?i)sampler|choices"),
        ("unknown budget unit", _audit_args(mode="bits"), r"(?i)mode|choices"),
    ]
