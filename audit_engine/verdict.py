"""Plain-language verdicts on a reconstruction, anchored on the unrelated-image baseline.

A similarity score only means something beside two reference points: an exact copy
(SSIM 1) and an unrelated image of the same kind (the baseline b: the mean SSIM of two
distinct images from the prior's data set). The reconstruction's position between them,

    r = (SSIM - b) / (1 - b),

is 0 when it resembles the target no more than a random other image does (it reveals
nothing specific), and 1 for a copy. The thresholds:

- r >= 0.5, "recognisable": more than half-way from an unrelated image to a copy;
  on the embedded digit prior this is where the digit classifier reads the original's
  label from nearly every reconstruction (docs/PRIOR.md);
- 0.2 <= r < 0.5, "partly recognisable": clearly closer than unrelated images, but
  details are lost (the digit's class may still be revealed);
- r < 0.2, "not recognisable": within a fifth of the way from an unrelated image.

A start beyond the prior's range is always "not recognisable": the output is then a
sample from the prior and carries nothing of the target.
"""
from __future__ import annotations

__all__ = ["RECOGNISABLE", "PARTLY", "verdict"]

RECOGNISABLE = 0.5
PARTLY = 0.2


def verdict(ssim: float, baseline_ssim: float | None, *, beyond_range: bool = False
            ) -> tuple[str, float]:
    """(label, r) for a reconstruction's SSIM; baseline 0 when the prior has none."""
    b = 0.0 if baseline_ssim is None else float(baseline_ssim)
    r = (float(ssim) - b) / (1.0 - b) if b < 1 else 0.0
    if beyond_range:
        return "not recognisable", r
    if r >= RECOGNISABLE:
        return "recognisable", r
    if r >= PARTLY:
        return "partly recognisable", r
    return "not recognisable", r
