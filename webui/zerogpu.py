"""What Hugging Face's ZeroGPU documents, in one place: the Python and PyTorch versions it
supports and the daily GPU quota of each kind of visitor. tests/test_deployment.py checks
the README's front matter and requirements.txt against these lists.

Source: https://huggingface.co/docs/hub/spaces-zerogpu, as in huggingface/hub-docs
docs/hub/spaces-zerogpu.md at commit 34ee0f00 (2026-07-21), read on 2026-12-03.
"""

from __future__ import annotations

SOURCE = (
    "https://huggingface.co/docs/hub/spaces-zerogpu (huggingface/hub-docs "
    "docs/hub/spaces-zerogpu.md, commit 34ee0f00 of 2026-07-21), read 2026-12-03"
)
PYTHON = ("3.12.12", "3.10.13")  # "Python:" in "Supported Versions"
TORCH = ("2.8.0", "2.9.1", "2.10.0", "2.11.0")  # the full list under "PyTorch:"
# "Usage Tiers": the included daily GPU quota, in seconds
DAILY_QUOTA_S = {"an anonymous visitor": 120, "a signed-in visitor": 300, "a PRO visitor": 2400}


def quota_note(seconds: float) -> str:
    """ "" when an anonymous visitor's daily quota covers ``seconds`` of GPU time, else which
    visitors' does (said before the work starts)."""
    for who, quota in DAILY_QUOTA_S.items():
        if seconds <= quota:
            if who == "an anonymous visitor":
                return ""
            return (
                f"This needs about {seconds:.0f} s of ZeroGPU time, more than an anonymous "
                f"visitor's daily quota ({DAILY_QUOTA_S['an anonymous visitor']} s): it "
                f"runs for {who} (daily quota {quota} s) or above."
            )
    return (
        f"This needs about {seconds:.0f} s of ZeroGPU time, more than any visitor's daily "
        f"quota ({max(DAILY_QUOTA_S.values())} s for a PRO visitor): use the command line "
        "on a GPU instead."
    )
