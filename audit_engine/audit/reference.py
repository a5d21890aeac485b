"""A reference set for every prior: images of the prior's kind and the prior's own guesses.

Verdicts need three things that only images of the prior's kind can give:

- *look-alikes*: the n - 1 other candidates of the identification test (Hayes et al.'s
  candidate setting) are drawn from the reference images;
- *what guessing achieves*: the prior's own unconditional samples are what the attack
  outputs when the observation carries nothing (a start beyond the schedule's range), so
  the rate at which a sample would pick the target, or carry its class, is the chance
  level of this attack on this image;
- *the domain check*: the prior's typicality score (below) of the reference images is the
  distribution an uploaded image is compared with.

Sources: a prior folder that ships ``heldout.npz`` (the embedded prior: 500 digits never
used in training) uses those images; any other prior uses a folder of images the user
names, or else images sampled once from the prior. Everything derived (samples, typicality
scores, the unrelated-image baseline) is cached on disk, keyed by the prior's weights and
the reference's settings: in the prior folder as ``reference.npz`` where it is shipped,
else under ``AUDIT_CACHE_DIR`` (default ``~/.cache/visual-privacy-audit``).

Typicality (the domain check): the prior's denoising error on the image at a few fixed
timesteps t, with fixed noise e_j, one value per timestep,

    L_t(x) = mean_j log( mean_pixels (eps_theta(sqrt(abar_t) y + sqrt(1 - abar_t) e_j, t) - e_j)^2 ),

with y = 2x - 1: the terms of the diffusion loss (an ELBO-like quantity) at those
timesteps; and two statistics of the image itself that no prior can talk itself out of,
its mean grey level and its contrast, log(std of the grey levels + 1/255). The profile is
(L_t)_t followed by these two. The score is the Mahalanobis distance of the profile from
the reference images' profiles, and its percentile among the reference images' own
distances. A profile far off in either direction is flagged: real out-of-domain images are
denoised worse than the reference, simple ones (flat colour, plain backgrounds) often better
at some timesteps, as generative models rate simpler images more typical (Nalisnick et al.
2019), so a one-sided likelihood test would miss them. The better a prior denoises, the
more it rates a flat grey square or a printed word typical; the image's own statistics
keep those out whatever the prior (docs/DOMAIN.md has the measurements). ``tail`` says
which side the mean denoising error is on.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..attacker.priors import Prior
from ..attacker.reconstruct import DEFAULT_DDIM_STEPS, default_batch, sample
from ..caches import Memo
from ..images import IMAGE_SUFFIXES, stack_to_tensor, to_model
from ..progress import Progress, counted, within

__all__ = [
    "baseline_for",
    "write_shipped_reference",
    "reference_from_arrays",
    "Reference",
    "ReferenceUnavailable",
    "NotPrepared",
    "reference_for",
    "typicality",
    "cache_dir",
    "is_prepared",
    "reference_size",
    "image_statistics",
    "DOMAIN_TIMESTEPS",
    "DOMAIN_DRAWS",
    "IMAGE_STATISTICS",
    "REFERENCE_VERSION",
]

DOMAIN_TIMESTEPS = (10, 50, 150, 400, 700)
DOMAIN_DRAWS = 4
IMAGE_STATISTICS = ("mean grey level", "log contrast")  # the profile's last columns
REFERENCE_VERSION = 3


class ReferenceUnavailable(RuntimeError):
    """No reference set can be made for this prior; the message says why."""


class NotPrepared(RuntimeError):
    """The prior's reference set has not been built and may not be built now (the
    dashboard: ``prepare`` builds it ahead, outside any request)."""


def cache_dir() -> Path:
    return Path(os.environ.get("AUDIT_CACHE_DIR", Path.home() / ".cache" / "visual-privacy-audit"))


def reference_size(prior: Prior) -> int:
    """Images sampled from a prior that ships none: 500 at up to 32 pixels, 200 up to 64,
    50 above (each costs one unconditional sample; a 256-pixel prior wants a GPU)."""
    side = prior.sample_size
    return 500 if side <= 32 else 200 if side <= 64 else 50


@torch.inference_mode()
def typicality(
    prior: Prior,
    images: torch.Tensor,
    *,
    batch: int | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """The typicality profile of each image (N, C, H, W) in [0, 1] (module docstring): (N, T + 2),
    the prior's log denoising errors at DOMAIN_TIMESTEPS, then image_statistics. Fixed noise:
    the same for every image.
    ``batch``: UNet evaluations per call (default: 256, fewer for large images, as
    reconstruct.default_batch bounds them); ``progress`` after each chunk of images."""
    shape = tuple(images.shape[1:])
    g = torch.Generator().manual_seed(0x7E57)
    noise = torch.randn((DOMAIN_DRAWS, *shape), generator=g)
    abar = prior.alphas_cumprod
    ts = [t for t in DOMAIN_TIMESTEPS if t < len(abar)]
    per_image = len(ts) * DOMAIN_DRAWS
    batch = batch or min(256, default_batch(prior))
    chunk = max(1, batch // per_image)
    out = []
    for i in range(0, len(images), chunk):
        y = to_model(images[i : i + chunk].float())
        n = len(y)
        xs, tt, ee = [], [], []
        for t in ts:
            a = float(abar[t])
            for e in noise:
                xs.append(a**0.5 * y + (1 - a) ** 0.5 * e)
                tt.append(torch.full((n,), t))
                ee.append(e.expand(n, *shape))
        x_t, t_all = torch.cat(xs), torch.cat(tt)
        e_hat = torch.cat(
            [  # at most ``batch`` evaluations per UNet call
                prior.predict_eps(
                    x_t[k : k + batch].to(prior.device).float(),
                    t_all[k : k + batch].to(prior.device),
                )
                .float()
                .cpu()
                for k in range(0, len(x_t), batch)
            ]
        )
        err = (e_hat - torch.cat(ee)).pow(2).flatten(1).mean(1).clamp(min=1e-12).log()
        out.append(err.view(len(ts), DOMAIN_DRAWS, n).mean(1).T)
        counted(progress, min(i + chunk, len(images)), len(images), "images scored")
    errors = torch.cat(out).double().numpy()
    return np.concatenate([errors, image_statistics(images)], axis=1)


def image_statistics(images: torch.Tensor) -> np.ndarray:
    """(N, 2): each image's mean grey level and log(standard deviation of its grey levels +
    1/255), images (N, C, H, W) in [0, 1]. A flat image's contrast is log(1/255) = -5.5."""
    grey = images.double().mean(1).flatten(1)
    return torch.stack([grey.mean(1), (grey.std(1, correction=0) + 1 / 255).log()], 1).numpy()


@dataclass
class Reference:
    """Images of the prior's kind, the prior's own samples, and what is derived from them."""

    images: torch.Tensor = field(repr=False)  # (N, C, H, W) in [0, 1]: look-alikes, baseline
    samples: torch.Tensor = field(repr=False)  # (M, C, H, W): the prior's own guesses
    profiles: np.ndarray = field(repr=False)  # (N, T + 2) typicality profiles of the images
    source: str  # in words, for the page and the report
    samples_are_images: bool = False  # sampled reference: samples and images are one set
    baseline: dict | None = None  # the unrelated-image baseline over the reference images
    # the classes of the prior's samples and of the images by the prior's attribute
    # classifier (None without one): the attribute's chance level
    sample_classes: torch.Tensor | None = field(default=None, repr=False)
    image_classes: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        p = np.asarray(self.profiles, dtype=np.float64)
        self._mean = p.mean(axis=0)
        cov = np.cov(p.T) + 1e-6 * np.eye(p.shape[1])
        self._icov = np.linalg.inv(cov)
        self.distances = self.distance(p)

    @property
    def mean_profile(self) -> np.ndarray:
        """The reference images' mean typicality profile."""
        return self._mean

    @property
    def typical_norm(self) -> float:
        """The median L2 norm of the reference images: a public statistic of the domain
        (the default clipping bound, and what the attacker rescales a release to)."""
        return float(self.images.flatten(1).double().norm(dim=1).median())

    def distance(self, profiles: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of typicality profiles (N, T + 2) from the reference's."""
        d = np.atleast_2d(profiles) - self._mean
        return np.sqrt(np.einsum("ij,jk,ik->i", d, self._icov, d))


_MEMORY: Memo[tuple, Reference] = Memo()


def _weights_digest(prior: Prior) -> str:
    """SHA-256 of the UNet's parameters (so a retrained prior never reuses a stale cache),
    rounded to bfloat16 first: the same weights loaded in float32, float16 or bfloat16 give
    the same digest."""
    h = hashlib.sha256()
    for name, p in sorted(prior.unet.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().to("cpu", torch.bfloat16).float().numpy().tobytes())
    return h.hexdigest()


def _load_folder(folder: Path, prior: Prior) -> torch.Tensor:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    images = []
    for p in files:
        try:
            images.append(prior.load_image(p))
        except Exception:  # unreadable files are skipped; the count is reported
            continue
    if len(images) < 10:
        raise ReferenceUnavailable(
            f"the reference folder holds {len(images)} readable images; "
            "at least 10 are needed (100 or more for a useful domain check)"
        )
    return torch.stack(images)


def _u8(x: torch.Tensor) -> np.ndarray:
    return x.clamp(0, 1).mul(255).round().to(torch.uint8).numpy()


def _f(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).float().div(255)


def build_reference(
    prior: Prior, *, images: torch.Tensor | None, n_samples: int, progress: Progress | None = None
) -> dict:
    """Compute a reference's arrays (the content of a ``reference.npz``)."""
    say = progress or (lambda f, m: None)
    say(0.0, f"drawing {n_samples} images from the prior (once; cached)")
    samples = sample(
        prior,
        n_samples,
        sampler="ddim",
        steps=DEFAULT_DDIM_STEPS,
        seed=0,
        progress=within(say, 0.0, 0.8, "sampling the reference set"),
    )
    ref = samples if images is None else images
    say(0.8, "scoring the reference images' typicality")
    profiles = typicality(
        prior, ref, progress=within(say, 0.8, 1.0, "scoring the reference images' typicality")
    )
    return {
        "images": _u8(ref),
        "samples": _u8(samples),
        "profiles": profiles,
        "samples_are_images": images is None,
    }


def reference_from_arrays(arrays, source: str, prior: Prior) -> Reference:
    """A Reference from the arrays of a ``reference.npz`` (``build_reference``'s)."""
    from ..attacker.attacks import unrelated_baseline
    from ..attacker.attributes import classifier_for, classify

    images, samples = _f(arrays["images"]), _f(arrays["samples"])
    base = unrelated_baseline(images, n_pairs=min(1000, 4 * len(images)))
    base["data"] = source
    clf = classifier_for(prior)
    classes = (None, None) if clf is None else (classify(clf, samples)[0], classify(clf, images)[0])
    return Reference(
        images=images,
        samples=samples,
        profiles=arrays["profiles"],
        source=source,
        samples_are_images=bool(arrays["samples_are_images"]),
        baseline=base,
        sample_classes=classes[0],
        image_classes=classes[1],
    )


def reference_for(
    prior: Prior,
    *,
    folder: str | Path | None = None,
    progress: Progress | None = None,
    build: bool = True,
) -> Reference:
    """The reference set of a prior (see the module docstring), from memory, from disk, or
    computed once (with progress). ``folder``: images of the prior's kind to use instead of
    the shipped or sampled ones (at least 10). ``build=False``: NotPrepared rather than
    computing a missing set."""
    key = (prior.name, str(prior.folder), str(folder) if folder else None)
    return _MEMORY.get(key, lambda: _make(prior, folder, progress, allowed=build))


def is_prepared(prior: Prior, folder: str | Path | None = None) -> bool:
    """Whether the prior's reference set is in this process's memory, ready to use without
    computing or reading anything (never waits for a build under way)."""
    return (prior.name, str(prior.folder), str(folder) if folder else None) in _MEMORY


def _make(
    prior: Prior, folder, progress, *, write_to: Path | None = None, allowed: bool = True
) -> Reference:
    shipped = prior.folder / "heldout.npz" if prior.folder is not None else None
    if folder is not None:
        images = _load_folder(Path(folder), prior)
        source = f"{len(images)} images from the folder {Path(folder).name}"
    elif shipped is not None and shipped.is_file():
        held = np.load(shipped)["images"]
        images = stack_to_tensor(held)
        source = f"{len(images)} held-out images shipped with the prior (never used in training)"
    else:
        images, source = None, None
    n_samples = len(images) if images is not None else reference_size(prior)
    image_hash = None if images is None else hashlib.sha256(_u8(images).tobytes()).hexdigest()
    tag = hashlib.sha256(
        json.dumps(
            [
                REFERENCE_VERSION,
                _weights_digest(prior),
                DOMAIN_TIMESTEPS,
                DOMAIN_DRAWS,
                n_samples,
                DEFAULT_DDIM_STEPS,
                image_hash,
            ]
        ).encode()
    ).hexdigest()[:16]
    cached = cache_dir() / "reference" / f"{tag}.npz"
    places = (
        [prior.folder / "reference.npz"] if prior.folder is not None and folder is None else []
    ) + [cached]
    arrays = None
    for path in places if write_to is None else []:
        if path.is_file():
            with np.load(path) as z:
                if str(z["tag"]) == tag:
                    arrays = {k: z[k] for k in z.files}
                    break
    if arrays is None:
        if not allowed:
            raise NotPrepared(
                f"the reference set of {prior.name} has not been prepared "
                f"(python -m audit_engine prepare {prior.name})"
            )
        arrays = build_reference(prior, images=images, n_samples=n_samples, progress=progress)
        arrays["tag"] = np.array(tag)
        target = write_to or cached
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.stem + ".tmp.npz")
            np.savez_compressed(tmp, **arrays)
            tmp.replace(target)
        except OSError:  # a read-only cache: the reference is kept in memory only
            pass
    if source is None:
        source = f"{len(arrays['images'])} images sampled from the prior itself"
    return reference_from_arrays(arrays, source, prior)


def write_shipped_reference(prior: Prior, progress: Progress | None = None) -> Path:
    """Compute the reference of a prior folder and store it there as ``reference.npz``
    (scripts/build_reference.py); it is then used without recomputation."""
    path = prior.folder / "reference.npz"
    _MEMORY.clear()
    _MEMORY.put((prior.name, str(prior.folder), None), _make(prior, None, progress, write_to=path))
    return path


def baseline_for(prior: Prior) -> dict | None:
    """The unrelated-image baseline: the one shipped with the prior (it has LPIPS where its
    backbone was available), else the one over the prior's reference set; never 0."""
    from ..attacker.attacks import load_baseline

    shipped = load_baseline(prior.folder) if prior.folder is not None else None
    if shipped is not None:
        return shipped
    try:
        return reference_for(prior).baseline
    except (ReferenceUnavailable, OSError):
        return None
