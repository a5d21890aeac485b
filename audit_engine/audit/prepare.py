"""Prepare a prior ahead of time: everything an audit needs that does not depend on the
uploaded image, so that no request ever computes it.

Phases (each reported through ``progress(fraction, message)``):
1. the weights: loaded (downloaded from the Hub first where the network allows);
2. the cost of one UNet evaluation on this device (costs.py), from which long work is
   estimated before it starts (first, so that work that cannot finish here is refused with
   its estimate even while the rest is prepared);
3. the reference set (reference.py): the prior's own samples (DDIM, DEFAULT_DDIM_STEPS
   steps from x_T: they stand for what the attack outputs when the release carries
   nothing), and, for a prior that ships no images of its kind, its sampled reference
   images; their typicality profiles (the domain check's calibration); cached on disk;
4. the unrelated-image baseline over the reference images.

``python -m audit_engine prepare PRIOR [PRIOR ...]`` runs it from the command line (the
Dockerfile does, for the priors it bakes in); the dashboard runs it in a background thread
at launch for every prior it offers.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..attacker.priors import Prior, load_prior
from ..progress import Progress
from . import costs
from .reference import reference_for

__all__ = ["Prepared", "Preparer", "prepare", "measure_cost", "PHASES"]

# each phase's share of the progress bar (the reference set is most of the work)
# (the cost first: from then on the app can refuse, with an estimate, work that cannot
# finish on this hardware, even while the reference set is still being built)
PHASES = {
    "weights": (0.0, 0.05),
    "cost": (0.05, 0.1),
    "reference": (0.1, 0.95),
    "baseline": (0.95, 1.0),
}


@dataclass
class Prepared:
    prior: str
    device: str
    dtype: str
    reference: str  # the reference set in words
    reference_images: int
    per_eval_s: float  # seconds per sample evaluation of the UNet here
    seconds: dict = field(default_factory=dict)  # phase -> seconds it took

    def to_json(self) -> dict:
        return asdict(self)


def measure_cost(prior: Prior | str, *, device: str | None = None) -> float:
    """Load the prior and time its UNet here, quickly (one sample per call above 64 pixels):
    the first thing the app does for every prior it offers, so that work that cannot finish
    on this hardware is refused with its estimate from the start."""
    if not isinstance(prior, Prior):
        prior = load_prior(prior, device=device)
    return costs.measure_quickly(prior)


def prepare(
    prior: Prior | str | None = None,
    *,
    reference=None,
    device: str | None = None,
    progress: Progress | None = None,
) -> Prepared:
    """Prepare ``prior`` (a loaded Prior, a registry key, a folder or a Hub id; default the
    embedded prior); ``reference``: a folder of images of its kind to use instead;
    ``device``: where to load it (default: the audit's)."""
    say = progress or (lambda f, m: None)
    times = {}

    def phase(name: str, f: float, message: str) -> None:
        lo, hi = PHASES[name]
        say(lo + (hi - lo) * min(max(f, 0.0), 1.0), message)

    t = time.perf_counter()
    phase("weights", 0.0, "loading the weights")
    if not isinstance(prior, Prior):
        prior = load_prior(prior, device=device)
    times["weights"] = time.perf_counter() - t

    t = time.perf_counter()
    phase("cost", 0.0, "timing the UNet on this device")
    per = costs.measure(prior)
    times["cost"] = time.perf_counter() - t

    t = time.perf_counter()
    phase("reference", 0.0, "the reference set (look-alikes, chance levels, domain check)")
    ref = reference_for(
        prior, folder=reference, build=True, progress=lambda f, m: phase("reference", f, m)
    )
    times["reference"] = time.perf_counter() - t

    t = time.perf_counter()
    phase("baseline", 0.0, "the unrelated-image baseline")
    _ = ref.baseline  # computed with the reference set; here for the record of its time
    times["baseline"] = time.perf_counter() - t
    say(1.0, "ready")
    return Prepared(
        prior=prior.name,
        device=str(prior.device),
        dtype=str(prior.dtype).removeprefix("torch."),
        reference=ref.source,
        reference_images=len(ref.images),
        per_eval_s=per,
        seconds=times,
    )


class Preparer:
    """Prepares priors one after another in a background thread (the dashboard's, at
    launch): never inside a request, never in the one-at-a-time model group. ``status`` and
    ``require`` answer at once, from any thread, while a preparation runs."""

    def __init__(
        self,
        keys,
        *,
        run: Callable[..., Prepared] = prepare,
        measure: Callable[..., float] | None = measure_cost,
        clock: Callable[[], float] = time.monotonic,
    ):
        import threading

        self._run, self._measure, self._clock = run, measure, clock
        self._lock = threading.Lock()
        self._state = {
            k: {"state": "waiting", "fraction": 0.0, "message": "", "started": None, "error": ""}
            for k in keys
        }
        self._thread = None

    @property
    def active(self) -> bool:
        """Whether preparation is managed here (the dashboard launched it)."""
        return self._thread is not None

    def start(self, *, first: tuple = ()) -> None:
        """Prepare ``first`` now (in this thread), then, in a background thread, time every
        other prior's UNet (seconds each) and prepare them one after another."""
        import threading

        for key in first:
            self._prepare(key)
        rest = [k for k in self._state if self._state[k]["state"] == "waiting"]

        def work() -> None:
            for key in rest if self._measure is not None else ():
                self._time(key)
            for key in rest:
                if self._state[key]["state"] == "waiting":
                    self._prepare(key)

        self._thread = threading.Thread(target=work, name="prepare-priors", daemon=True)
        self._thread.start()

    def _available(self, key) -> bool:
        """Whether the prior can be loaded here; marks it "unavailable" with the reason if not."""
        from ..attacker.priors import prior_status

        state, why = prior_status(key)
        if state == "unavailable":
            self._set(key, state="unavailable", error=why)
        return state != "unavailable"

    def _time(self, key) -> None:
        from ..attacker.priors import PriorUnavailable

        if not self._available(key):
            return
        try:
            self._measure(key)
        except (PriorUnavailable, ValueError, OSError, RuntimeError) as exc:
            self._set(key, state="failed", error=str(exc))

    def _set(self, key, **kw) -> None:
        with self._lock:
            self._state[key].update(kw)

    def _prepare(self, key) -> None:
        from ..attacker.priors import PriorUnavailable
        from .reference import ReferenceUnavailable

        if not self._available(key):
            return
        self._set(key, state="preparing", started=self._clock(), fraction=0.0)
        try:
            self._run(key, progress=lambda f, m: self._set(key, fraction=float(f), message=m))
        except (PriorUnavailable, ReferenceUnavailable, ValueError, OSError, RuntimeError) as exc:
            self._set(key, state="failed", error=str(exc))
            return
        self._set(key, state="ready", fraction=1.0, message="ready")

    def status(self, key) -> dict:
        with self._lock:
            return dict(self._state.get(key, {"state": "unknown"}))

    def seconds_left(self, key) -> float | None:
        s = self.status(key)
        if s.get("state") != "preparing" or not s["fraction"] > 0.02:
            return None
        spent = self._clock() - s["started"]
        return spent / s["fraction"] * (1 - s["fraction"])

    def label(self, key) -> str:
        """How the prior selector shows a prior's preparation ("" once ready)."""
        s = self.status(key)
        if not self.active or s.get("state") in ("ready", "unknown"):
            return ""
        if s["state"] == "preparing":
            return f"preparing ({s['fraction']:.0%})"
        if s["state"] == "waiting":
            return "waiting to be prepared"
        return s["state"]

    def require(self, key) -> None:
        """NotPrepared, at once and with the progress and time left, unless ``key`` is ready
        (nothing is required where this preparer is not active)."""
        from .reference import NotPrepared

        if not self.active:
            return
        s = self.status(key)
        if s.get("state") in ("ready", "unknown"):
            return
        if s["state"] == "preparing":
            left = self.seconds_left(key)
            eta = "" if left is None else f", about {max(1, round(left / 60))} min left"
            raise NotPrepared(
                f"This prior is being prepared ({s['fraction']:.0%}{eta}: "
                f"{s['message']}). Its first audit can start when it is ready; "
                "the embedded prior is ready now."
            )
        if s["state"] == "waiting":
            raise NotPrepared(
                "This prior waits to be prepared: the server times each prior it "
                "offers, then prepares them one at a time. The embedded prior is "
                "ready now."
            )
        raise NotPrepared(f"This prior cannot be used here: {s['error']}")
