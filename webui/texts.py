"""What the page says: the introduction, the explanation of what is shown, the data-set tab."""

from .config import DATASET_EPS

_EPS = ", ".join(f"{e:g}" for e in DATASET_EPS[:-1]) + f" and {DATASET_EPS[-1]:g}"
DATASET_INTRO = f"""**Audit a data set.** Upload several images of one kind: each is audited
at eps {_EPS} (delta as set on the first tab) with the prior, tries and seed of the first
tab, and you get the share of the images recognisable or partly recognisable at each budget,
with its uncertainty over the images. Images outside the prior's domain are counted apart
and not judged. For more images use the command line (`python -m audit_engine batch`)."""

INTRO = """# Visual privacy audit
Upload an image (or pick an example), choose a privacy budget and press **Run audit**.
You see what an attacker who knows what such images look like could recover from a model
trained with differential privacy (DP-SGD) at that budget."""

WHAT = """**What am I looking at?** *Original*: your image, as the model sees it. *Privatized*:
what an attacker gets back from one DP-SGD training step on this image (the gradient,
clipped and noised as DP-SGD does, turned back into a picture). *Reconstruction*: what a
diffusion model that knows this kind of image (the attacker's "prior") makes of the
privatized picture. If the reconstruction looks like your image, the budget does not
protect it against this attacker. Smaller budgets (left on the slider) add more noise.

**Verdicts** are rates over repeated tries, never one picture, for two attackers: one who
already holds your image among 10 candidates and picks the one nearest to what it receives
(thousands of tries), and one who only knows what such images look like and picks, among 10
images of this kind, the one its reconstruction resembles most. *Recognisable*: an attacker
picks yours in more than half the tries and clearly more often than chance (the lower end
of the 95% interval above it); *partly recognisable*: clearly more often than chance, not in
most tries; *not recognisable*: shown to stay within chance + 10 points (the upper end of
the interval), or guaranteed by the budget itself; *undetermined*: neither is shown yet,
and more tries are added. The headline is the worse attacker. The prior's attribute (the
digit class for the embedded prior; the label of your folder for a prior trained with
labels) is judged the same way for two attackers, one reading it off the reconstruction and one off
the privatized image itself, each against what it names when the release carries nothing
about your image (its base rate): *revealed* when either names it clearly more often,
*not revealed* only when both are shown to stay within their base rate + 10 points (or the
budget guarantees it); claimed only when the classifier reads your image clearly.
The *spread* map shows where the tries disagree: where the attacker is guessing.
Before any verdict the prior scores how typical your image is of what it knows; outside
its domain no verdict is made (see `audit_engine/audit/verdict.py`, docs/DOMAIN.md)."""
