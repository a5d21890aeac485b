"""Image input/output and the one place where pixel ranges are converted.

Public API convention: images are float tensors in [0, 1], shape (C, H, W) or
(B, C, H, W). The diffusion model sees y = 2x - 1 in [-1, 1]: use ``to_model`` and
``to_unit`` and nothing else for that conversion.

Any input image is brought to the prior's resolution and channels the same way:
1. EXIF orientation applied, then all metadata dropped (only pixels are kept);
2. transparency composited onto black (the embedded digit prior's background);
3. colour converted to the prior's channels: grayscale with PIL's ITU-R 601-2 luma
   for 1-channel priors, RGB (grayscale replicated) for 3-channel priors;
4. centre-cropped to a square and resized to the prior's size with Lanczos filtering;
   a prior trained on padded images (the embedded one: MNIST's 28x28 digits padded with
   2 black pixels to 32x32) declares its content size, and an image of any other size is
   then resized to that content size and padded the same way (an image already at the
   prior's size is taken as it is).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "ImageLike",
    "MAX_INPUT_PIXELS",
    "IMAGE_SUFFIXES",
    "MODEL_SCALE",
    "to_model",
    "model_std",
    "to_unit",
    "ImageError",
    "open_image",
    "array_to_pil",
    "to_prior_tensor",
    "to_uint8",
    "stack_to_tensor",
]

ImageLike = Union[str, Path, bytes, Image.Image, np.ndarray, torch.Tensor]

MAX_INPUT_PIXELS = 40_000_000  # larger inputs are refused before decoding (bomb guard)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}  # in folders


# the model's [-1, 1] scale is MODEL_SCALE times the [0, 1] pixel scale, plus an offset
MODEL_SCALE = 2.0


def to_model(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] pixel scale -> the diffusion model's [-1, 1] scale."""
    return x * MODEL_SCALE - 1


def model_std(pixel_std):
    """A noise std in [0, 1] pixel scale -> the same noise in the model's scale."""
    return MODEL_SCALE * pixel_std


def to_unit(y: torch.Tensor) -> torch.Tensor:
    """The diffusion model's [-1, 1] scale -> [0, 1] pixel scale."""
    return (y + 1) / MODEL_SCALE


class ImageError(ValueError):
    """An input that cannot be read as an image; the message is meant for the user."""


def open_image(source: ImageLike) -> Image.Image:
    """Decode ``source`` into a PIL image with orientation applied and metadata dropped."""
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, (np.ndarray, torch.Tensor)):
        return array_to_pil(source)
    else:
        data = source if isinstance(source, bytes) else None
        # messages never contain the file's path or name: they are shown to the user and
        # may be logged, and an upload's name is the user's
        try:
            if data is None:
                path = Path(source)
                if path.is_file() and path.stat().st_size == 0:
                    raise ImageError("the file is empty")
                img = Image.open(path)
            elif not data:
                raise ImageError("the file is empty")
            else:
                img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_INPUT_PIXELS:
                raise ImageError(
                    f"image is {w}x{h} = {w * h:,} pixels, too large: the limit is "
                    f"{MAX_INPUT_PIXELS:,} pixels"
                )
            img.load()
        except ImageError:
            raise
        except FileNotFoundError:
            raise ImageError("the image file was not found") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(
                "image refused: too large when decoded (a possible decompression "
                f"bomb); the limit is {MAX_INPUT_PIXELS:,} pixels"
            ) from None
        except UnidentifiedImageError:
            if _has_image_signature(data if data is not None else Path(source)):
                raise ImageError(
                    "the image file is truncated or broken and cannot be read as an image"
                ) from None
            raise ImageError(
                "the file cannot be read as an image: use a PNG, JPEG, GIF, BMP, "
                "TIFF or WebP picture (SVG and other formats are not supported)"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
            kind = "truncated or broken" if "truncat" in str(exc).lower() else "broken"
            raise ImageError(
                f"the image file is {kind} and cannot be read as an image ({type(exc).__name__})"
            ) from None
        except Exception as exc:  # PIL raises many types for corrupt data
            raise ImageError(
                f"the file cannot be read as an image ({type(exc).__name__})"
            ) from None
    try:
        img.seek(0)  # first frame of animations
    except (AttributeError, EOFError, ValueError):
        pass
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block: keep the pixels as stored
        pass
    return _strip(img)


_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def _has_image_signature(source: bytes | Path) -> bool:
    """Whether the data starts like a PNG, JPEG, GIF, BMP, TIFF or WebP file."""
    if isinstance(source, Path):
        with source.open("rb") as fh:
            source = fh.read(16)
    head = source[:16]
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _strip(img: Image.Image) -> Image.Image:
    """A copy holding only pixels (L, LA, RGB or RGBA): no EXIF, ICC, text or other metadata."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ImageError("image contains NaN or infinite pixel values")
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / hi, 0, 1)
        return Image.fromarray((arr * 255 + 0.5).astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode not in ("L", "LA", "RGB", "RGBA"):
        has_alpha = "A" in img.mode or "a" in img.mode
        img = img.convert("RGBA" if has_alpha else ("L" if img.mode == "1" else "RGB"))
    return Image.frombytes(img.mode, img.size, img.tobytes())


def array_to_pil(arr: np.ndarray | torch.Tensor) -> Image.Image:
    """A [0, 1] float or uint8 array (H, W), (H, W, C) or tensor (C, H, W) as a PIL image."""
    if isinstance(arr, torch.Tensor):
        t = arr.detach().float().cpu()
        if t.ndim == 3:
            t = t.permute(1, 2, 0)
        arr = t.numpy()
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(f"cannot interpret an array of shape {arr.shape} as an image")
    if arr.dtype != np.uint8:
        arr = np.asarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ImageError("image array contains NaN or infinite values")
        arr = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(arr)


def to_prior_tensor(
    source: ImageLike, *, size: int, channels: int, content_size: int | None = None
) -> torch.Tensor:
    """Any image -> float tensor (channels, size, size) in [0, 1] (see the module docstring)."""
    if channels not in (1, 3):
        raise ValueError(f"priors with {channels} channels are not supported (1 or 3)")
    img = open_image(source)
    if img.mode in ("RGBA", "LA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba)
    img = img.convert("L" if channels == 1 else "RGB")
    if content_size and content_size < size and img.size != (size, size):
        inner = ImageOps.fit(img, (content_size, content_size), method=Image.Resampling.LANCZOS)
        img = Image.new(img.mode, (size, size), 0)
        img.paste(inner, ((size - content_size) // 2, (size - content_size) // 2))
    else:
        img = ImageOps.fit(img, (size, size), method=Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """A [0, 1] tensor (C, H, W) as uint8 (H, W) or (H, W, 3), clipped, for display."""
    a = x.detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    a = a.permute(1, 2, 0).numpy()
    return a[:, :, 0] if a.shape[2] == 1 else a


def stack_to_tensor(images: np.ndarray) -> torch.Tensor:
    """A stack of uint8 images as (N, C, H, W) floats in [0, 1], whichever layout it was
    saved in: (N, H, W) grayscale, (N, H, W, C) or (N, C, H, W) with C = 1 or 3 (the held-out
    images a prior folder ships)."""
    x = torch.from_numpy(np.asarray(images)).float().div(255)
    if x.ndim == 3:
        return x.unsqueeze(1)
    if x.ndim != 4:
        raise ValueError(f"cannot read an image stack of shape {tuple(x.shape)}")
    if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    return x.contiguous()
