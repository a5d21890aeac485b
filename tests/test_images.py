"""Any input image is brought to the prior's size and channels the documented way."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from audit_engine.images import ImageError, open_image, to_model, to_prior_tensor, to_unit


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


def test_range_conversion_round_trip():
    x = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(to_unit(to_model(x)), x)
    assert to_model(torch.zeros(1)).item() == -1 and to_model(torch.ones(1)).item() == 1


def test_rgb_to_gray_prior_size_and_range():
    img = Image.new("RGB", (100, 60), (255, 0, 0))
    t = to_prior_tensor(_png(img), size=32, channels=1)
    assert t.shape == (1, 32, 32) and t.dtype == torch.float32
    assert float(t.mean()) == pytest.approx(76 / 255, abs=2 / 255)  # ITU-R 601-2 luma of red


def test_gray_to_rgb_prior():
    t = to_prior_tensor(_png(Image.new("L", (10, 10), 128)), size=8, channels=3)
    assert t.shape == (3, 8, 8) and torch.allclose(t[0], t[1])


def test_transparency_composited_on_black():
    img = Image.new("RGBA", (8, 8), (255, 255, 255, 0))
    img.putpixel((0, 0), (255, 255, 255, 255))
    t = to_prior_tensor(_png(img), size=8, channels=1)
    assert float(t.max()) == pytest.approx(1.0, abs=1e-3) and float(t.median()) == 0


def test_palette_and_16_bit():
    p = Image.new("P", (6, 6))
    p.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    p.putpixel((1, 1), 1)
    p.info["transparency"] = 0
    assert to_prior_tensor(_png(p), size=6, channels=1).max() > 0.9
    arr = np.full((6, 6), 65535 // 2, dtype=np.uint16)
    t = to_prior_tensor(_png(Image.fromarray(arr)), size=6, channels=1)
    assert float(t.mean()) == pytest.approx(0.5, abs=0.01)


def test_exif_orientation_applied_and_metadata_dropped():
    img = Image.new("RGB", (20, 10), (0, 0, 0))
    for x in range(10):
        img.putpixel((x, 0), (255, 255, 255))  # a mark at the top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    data = _png(img, format="JPEG", exif=exif.tobytes(), quality=95)
    opened = open_image(data)
    assert opened.size == (10, 20) and not opened.info.get("exif") and not opened.getexif()


@pytest.mark.parametrize(
    "data,msg",
    [
        (b"", "the file is empty"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "cannot be read as an image.*SVG"),
        (_png(Image.new("RGB", (30, 30)))[:40], "truncated or broken"),
    ],
)
def test_bad_files_give_clear_errors(data, msg):
    with pytest.raises(ImageError, match=msg):
        to_prior_tensor(data, size=8, channels=1)


def test_missing_file():
    with pytest.raises(ImageError, match="not found"):
        to_prior_tensor("/nonexistent/x.png", size=8, channels=1)


def test_arrays_and_nan():
    t = to_prior_tensor(np.ones((5, 7)) * 0.5, size=4, channels=1)
    assert t.shape == (1, 4, 4)
    with pytest.raises(ImageError, match="NaN"):
        to_prior_tensor(np.full((4, 4), np.nan), size=4, channels=1)
