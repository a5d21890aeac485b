"""Is a trained prior fit to audit with? An honest report, printed and written into the card.

- **Domain check on its own held-out images** (two-fold, as docs/DOMAIN.md measures the
  embedded prior's): half the held-out images calibrate the check, the other half are
  judged, and the other way round; the rate judged inside the domain.
- **Photographs and flat images flagged**: scikit-image's photographs and generated flat
  images (constant grey levels, gradients), fitted to the prior, judged against the whole
  reference set; the rate judged outside. (If your images are photographs, the first rate
  is expected to be low: it is reported, not held against the prior.)
- **Memorization** (Carlini et al. 2023, "Extracting training data from diffusion
  models"): for each of SAMPLES ancestral samples, the distance to its nearest training image divided by
  the distance to the second nearest; below 1/3 the sample is a near-copy of one training
  image. The same ratio for the held-out images is the control (real images never trained
  on). And the data-copying test (Meehan et al. 2020): samples that lie nearer the training
  images than the held-out images do (one-sided Mann-Whitney, p < DATA_COPYING_P, and a
  median distance below 0.8 of theirs) copy without being exact copies. A prior that copies its training images reconstructs them from noise: it would call
  any image like them "recognisable", and its verdicts would overstate what DP leaks.
- **Generalisation**: the denoising error at the domain check's fixed timesteps and noise
  (reference.typicality) on training images against held-out images; far better on the training images (GENERALISATION_GAP) is the
  other sign of a prior that memorises.
- **Convergence**: the loss over the last tenth of training against the first tenth and
  against the tenth before it.
- **Strength as an attacker**: an under-trained prior draws samples far from any image of
  its kind. When its samples' median distance to their nearest training image exceeds
  WEAK_ATTACKER times the held-out images' (real images of the kind, never trained on), it
  is too weak an attacker: its "not recognisable" and "ATTRIBUTE not revealed" understate
  what an attacker with a better prior learns (the gallery attacker and the prior-free
  attribute attacker, which need no prior, still hold).

Fit to audit with only when every rule below holds; otherwise the card says which failed.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ..progress import Progress, silent, time_left
from .data import ImageFolder

__all__ = [
    "MIN_TRAIN",
    "MIN_HELDOUT",
    "NEAR_COPY_RATIO",
    "MEMORIZATION_LIMIT",
    "DOMAIN_ACCEPTS",
    "FLAT_FLAGGED",
    "CONVERGED",
    "GENERALISATION_GAP",
    "DATA_COPYING_P",
    "WEAK_ATTACKER",
    "data_copying_p",
    "check_fitness",
    "near_copies",
    "flat_images",
    "photographs",
    "verdict_sentence",
]

MIN_TRAIN = 200  # fewer training images: too few to learn a domain from
MIN_HELDOUT = 20  # fewer held-out images: no reference set of real images, no two-fold check
NEAR_COPY_RATIO = 1 / 3  # nearest / second-nearest training image below this: a near-copy
MEMORIZATION_LIMIT = 0.05  # more near-copies among the samples than this: memorises
DOMAIN_ACCEPTS = 0.8  # at least this share of held-out images inside the domain
FLAT_FLAGGED = 0.8  # at least this share of flat images outside the domain
CONVERGED = 0.7  # the last tenth's loss below this share of the first tenth's (from scratch)
GENERALISATION_GAP = 2.0  # held-out denoising loss above this multiple of training's: memorises
DATA_COPYING_P = 0.01  # samples nearer the training images than held-out images, this surely
WEAK_ATTACKER = 1.5  # samples this much farther from the training images than held-out images
SAMPLES = 64  # samples drawn for the memorization check
SAMPLE_STEPS = 250  # ancestral (DDPM) steps per sample: the prior's own distribution
PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "moon", "coins", "page")


def near_copies(samples: torch.Tensor, train: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(nearest distance, nearest / second-nearest ratio) of each sample (N, C, H, W) in
    [0, 1] among the training images (L2 over pixels)."""
    if len(train) < 2:
        raise ValueError("the memorization check needs at least 2 training images")
    a = samples.flatten(1).double()
    d = torch.cat([torch.cdist(a, b.flatten(1).double()) for b in train.split(2048)], dim=1)
    two = d.topk(2, dim=1, largest=False).values
    return two[:, 0].numpy(), (two[:, 0] / two[:, 1].clamp(min=1e-12)).numpy()


def data_copying_p(sample_distances: np.ndarray, heldout_distances: np.ndarray) -> float:
    """The one-sided Mann-Whitney p-value that samples lie nearer their nearest training
    image than real held-out images do (Meehan, Chaudhuri & Dasgupta 2020, "A non-parametric
    test to detect data-copying in generative models"): small when the prior copies."""
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(sample_distances, heldout_distances, alternative="less").pvalue)


def photographs(prior) -> torch.Tensor:
    """scikit-image's photographs, fitted to the prior as an upload would be."""
    import skimage.data

    return torch.stack([prior.load_image(getattr(skimage.data, name)()) for name in PHOTOS])


def flat_images(size: int, channels: int) -> torch.Tensor:
    """Constant grey levels and linear gradients: nobody's domain."""
    ramp = torch.linspace(0, 1, size)
    images = [torch.full((channels, size, size), v) for v in (0.0, 0.1, 0.5, 0.9, 1.0)]
    images += [
        ramp.view(1, 1, -1).expand(channels, size, size),
        ramp.view(1, -1, 1).expand(channels, size, size),
        (ramp.view(1, 1, -1) * 0.5 + 0.25).expand(channels, size, size),
    ]
    return torch.stack([x.contiguous() for x in images])


def _denoising_error(profiles: np.ndarray) -> float:
    """The mean denoising MSE of typicality profiles (reference.typicality: log errors at
    fixed timesteps and noise, then the image statistics)."""
    from ..audit.reference import IMAGE_STATISTICS

    return float(np.exp(profiles[:, : -len(IMAGE_STATISTICS)]).mean())


def _two_fold(profiles: np.ndarray) -> float:
    """The share of held-out images inside the domain when each half calibrates the check
    for the other."""
    from ..audit.verdict import outside_domain

    halves = [np.arange(0, len(profiles), 2), np.arange(1, len(profiles), 2)]
    outside = sum(
        int(outside_domain(profiles[calib], profiles[judged]).sum())
        for calib, judged in (halves, halves[::-1])
    )
    return 1 - outside / len(profiles)


def check_fitness(
    folder: Path, data: ImageFolder, info: dict, *, progress: Progress | None = None
) -> dict:
    """Every check of the module docstring on the prior written to ``folder`` (its reference
    set is built here from the held-out images), and the plain sentence."""
    from ..attacker.priors import load_prior
    from ..attacker.reconstruct import sample
    from ..audit.reference import reference_for, typicality, write_shipped_reference
    from ..audit.verdict import domain_check

    report_to = progress or silent
    t0 = time.perf_counter()
    # each phase's share of the check's time (the samples are most of it)
    phases = {
        "reference": (0.0, 0.3),
        "photos": (0.3, 0.35),
        "samples": (0.35, 0.9),
        "generalisation": (0.9, 1.0),
    }

    def phase(name: str, message: str):
        lo, hi = phases[name]

        def say(f: float, m: str = message) -> None:
            done = lo + (hi - lo) * min(max(f, 0.0), 1.0)
            left = time_left(round(1000 * done), 1000, time.perf_counter() - t0)
            report_to(done, f"fitness check: {m} ({left})")

        say(0.0)
        return say

    prior = load_prior(str(folder), device="cpu", dtype=torch.float32)
    report: dict = {"train_images": len(data.train), "heldout_images": len(data.heldout)}
    if len(data.heldout) < MIN_HELDOUT:  # train.py then writes no heldout.npz
        report["reference"] = (
            f"only {len(data.heldout)} held-out images (fewer than "
            f"{MIN_HELDOUT}): the reference set is sampled from the prior"
        )
    say = phase("reference", "building the reference set of the held-out images")
    write_shipped_reference(prior, progress=lambda f, m: say(f, f"reference set: {m}"))
    ref = reference_for(prior)
    report.setdefault("reference", ref.source)

    if len(data.heldout) >= MIN_HELDOUT:
        report["heldout_in_domain"] = _two_fold(np.asarray(ref.profiles))
    else:
        report["heldout_in_domain"] = None
    phase("photos", "judging photographs and flat images")
    for key, images in (
        ("photos_flagged", photographs(prior)),
        ("flat_flagged", flat_images(prior.sample_size, prior.channels)),
    ):
        profiles = typicality(prior, images)
        report[key] = float(np.mean([not domain_check(ref, p[None]).in_domain for p in profiles]))

    what = f"memorization and strength: {SAMPLES} samples against the {len(data.train)} training images"
    say = phase("samples", what)
    train = torch.from_numpy(data.train).float().div(255)
    if len(train) >= 2:
        samples = sample(
            prior,
            SAMPLES,
            sampler="ddpm",
            steps=SAMPLE_STEPS,
            seed=0,
            progress=lambda f, m: say(f, f"{what}: {m}"),
        )
        dist, ratio = near_copies(samples, train)
        report["near_copies"] = float(np.mean(ratio < NEAR_COPY_RATIO))
        report["median_nearest_distance"] = float(np.median(dist))
        if len(data.heldout):
            held_dist, control = near_copies(torch.from_numpy(data.heldout).float().div(255), train)
            report["heldout_near_copies"] = float(np.mean(control < NEAR_COPY_RATIO))
            report["heldout_median_nearest_distance"] = float(np.median(held_dist))
            report["data_copying_p"] = data_copying_p(dist, held_dist)
    else:
        report["near_copies"] = None
    # generalisation: the held-out images' profiles are the reference set's when it is theirs
    phase("generalisation", "denoising error on training and held-out images")
    heldout = torch.from_numpy(data.heldout).float().div(255)
    report["train_loss"] = _denoising_error(typicality(prior, train[:256]))
    report["heldout_loss"] = (
        None
        if not len(heldout)
        else _denoising_error(
            np.asarray(ref.profiles) if len(heldout) >= MIN_HELDOUT else typicality(prior, heldout)
        )
    )

    curve = info["loss"]["curve"]
    tenth = max(1, len(curve) // 10)
    first, last = float(np.mean(curve[:tenth])), float(np.mean(curve[-tenth:]))
    before = float(np.mean(curve[-2 * tenth : -tenth])) if len(curve) >= 2 * tenth else math.nan
    report["loss_first_tenth"], report["loss_last_tenth"] = first, last
    report["loss_tenth_before"] = before
    attribute = info.get("attribute") or {}
    report["attribute"] = attribute.get("attribute") if attribute.get("trained") else None
    report["reasons"] = _reasons(report, fine_tuned=bool(info["parameters"].get("init")))
    report["fit"] = not report["reasons"]
    report["sentence"] = verdict_sentence(report)
    report_to(1.0, f"fitness check: done in {time.perf_counter() - t0:.0f} s")
    return report


def _reasons(r: dict, *, fine_tuned: bool) -> list[str]:
    reasons = []
    if r["train_images"] < MIN_TRAIN:
        reasons.append(
            f"too few images: {r['train_images']} trained on (at least {MIN_TRAIN} "
            "needed to learn a domain)"
        )
    if r["near_copies"] is None:
        reasons.append("memorization could not be checked (fewer than 2 training images)")
    elif r["near_copies"] > MEMORIZATION_LIMIT:
        reasons.append(
            f"memorises: {r['near_copies']:.0%} of its samples are near-copies of a "
            f"training image (at most {MEMORIZATION_LIMIT:.0%} allowed)"
        )
    elif (
        r.get("data_copying_p") is not None
        and r["data_copying_p"] < DATA_COPYING_P
        and r["median_nearest_distance"] < 0.8 * r["heldout_median_nearest_distance"]
    ):
        reasons.append(
            f"memorises: its samples lie closer to its training images than new "
            f"images of the kind do (median distance to the nearest training image "
            f"{r['median_nearest_distance']:.2f} against "
            f"{r['heldout_median_nearest_distance']:.2f} for held-out images; "
            f"one-sided Mann-Whitney p = {r['data_copying_p']:.2g})"
        )
    elif r["heldout_loss"] is not None and r["heldout_loss"] > GENERALISATION_GAP * r["train_loss"]:
        reasons.append(
            f"memorises: it denoises its training images far better than held-out "
            f"ones (loss {r['train_loss']:.4f} against {r['heldout_loss']:.4f}; at "
            f"most {GENERALISATION_GAP:g}x allowed)"
        )
    converged = r["loss_last_tenth"] < CONVERGED * r["loss_first_tenth"] or fine_tuned
    still_falling = (
        not math.isnan(r["loss_tenth_before"])
        and r["loss_last_tenth"] < 0.85 * r["loss_tenth_before"]
    )
    if not converged or still_falling:
        reasons.append(
            f"did not converge: the loss went from {r['loss_first_tenth']:.4f} "
            f"(first tenth) to {r['loss_last_tenth']:.4f} (last tenth)"
            + (", still falling" if still_falling else "")
            + "; train longer"
        )
    if r["heldout_in_domain"] is None:
        reasons.append(
            f"too few held-out images ({r['heldout_images']}) to check the domain "
            f"check on real images (at least {MIN_HELDOUT})"
        )
    elif r["heldout_in_domain"] < DOMAIN_ACCEPTS:
        reasons.append(
            f"its domain check rejects {1 - r['heldout_in_domain']:.0%} of its own "
            f"held-out images (at most {1 - DOMAIN_ACCEPTS:.0%} allowed)"
        )
    if r["flat_flagged"] < FLAT_FLAGGED:
        reasons.append(f"its domain check accepts {1 - r['flat_flagged']:.0%} of flat images")
    if (
        r.get("median_nearest_distance") is not None
        and r.get("heldout_median_nearest_distance")
        and r["median_nearest_distance"] > WEAK_ATTACKER * r["heldout_median_nearest_distance"]
    ):
        reasons.append(
            f"too weak an attacker: its samples lie far from images of the kind (median "
            f"distance to the nearest training image {r['median_nearest_distance']:.2f} against "
            f'{r["heldout_median_nearest_distance"]:.2f} for held-out images): its "not '
            'recognisable"'
            + (f' and "{r["attribute"]} not revealed"' if r.get("attribute") else "")
            + " would understate what an attacker with a better prior learns (the gallery "
            "attacker"
            + (
                f" and the {r['attribute']} read off the release, which need"
                if r.get("attribute")
                else ", which needs"
            )
            + " no prior, still hold"
            + ("" if r.get("attribute") else "s")
            + "); train it longer or on more images"
        )
    return reasons


def verdict_sentence(r: dict) -> str:
    """The plain sentence of the report: fit to audit with, or why not."""
    if r["reasons"]:
        return "Not fit to audit with: " + "; ".join(r["reasons"]) + "."
    return (
        f"Fit to audit with: trained on {r['train_images']} images; "
        f"{r['heldout_in_domain']:.0%} of its held-out images inside its domain, "
        f"{r['flat_flagged']:.0%} of flat images and {r['photos_flagged']:.0%} of "
        f"photographs outside; {r['near_copies']:.0%} of its samples near-copies of a "
        f"training image."
    )
