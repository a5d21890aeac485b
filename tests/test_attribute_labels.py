"""Attributes for any labelled folder: labels read where users keep them, one classifier per
prior trained on its training split by the same code as the embedded one, audited by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ring_images
from PIL import Image

from audit_engine.training.data import read_folder, read_labels

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED = ROOT / "audit_engine" / "assets" / "prior-mnist32"


def _bars(n: int, size: int, seed: int) -> torch.Tensor:
    """n bright horizontal bars on black at varying heights and widths."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(n, 1, size, size)
    for k in range(n):
        top = int(torch.randint(2, size - 6, (1,), generator=g))
        height = int(torch.randint(2, 4, (1,), generator=g))
        out[k, 0, top : top + height, 2 : size - 2] = 0.8 + 0.2 * float(torch.rand(1, generator=g))
    return out


def _save(x: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(x[0].mul(255).round().to(torch.uint8).numpy()).save(path)


def _labelled_folder(root: Path, n: int = 120, size: int = 16) -> Path:
    """Two labels in class subfolders: "ring" and "bar" (n each)."""
    for k, x in enumerate(ring_images(n, size, seed=3)):
        _save(x, root / "ring" / f"r{k:03d}.png")
    for k, x in enumerate(_bars(n, size, seed=4)):
        _save(x, root / "bar" / f"b{k:03d}.png")
    return root


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return _labelled_folder(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="module")
def trained(labelled, tmp_path_factory):
    """A prior (a few steps, no fitness checks) and its "shape" classifier."""
    from audit_engine.training.train import TrainConfig, train_prior

    out = tmp_path_factory.mktemp("priors") / "shapes"
    info = train_prior(
        labelled,
        out,
        TrainConfig(
            size=16, steps=3, batch_size=16, seed=0, attribute="shape", attribute_steps=150
        ),
        fitness=False,
    )
    return out, info


def test_labels_come_from_class_subfolders_or_a_csv(labelled, tmp_path):
    data = read_folder(labelled, size=16, labels="auto")
    assert data.label_source == "subfolders" and data.label_names == ["bar", "ring"]
    names = np.array(data.label_names)
    assert all(
        names[lab] == Path(f).parts[0] for f, lab in zip(data.train_files, data.train_labels)
    )
    assert (data.heldout_labels >= 0).all() and len(data.heldout) > 0
    assert read_folder(labelled, size=16, labels="none").label_names == []
    # a flat folder with labels.csv: paths or unique bare names, a header, a missing row
    flat = tmp_path / "flat"
    flat.mkdir()
    rows = ["file,label"]
    files = sorted(labelled.glob("bar/*.png"))[:20] + sorted(labelled.glob("ring/*.png"))[:20]
    for k, p in enumerate(files):
        shutil.copy(p, flat / p.name)
        if k < 38:
            rows.append(f"{p.name},{'grade ' + p.parent.name}")
    rows.append("nowhere.png,bar")
    (flat / "labels.csv").write_text("\n".join(rows) + "\n")
    data = read_folder(flat, size=16, labels="auto")
    assert data.label_source == "labels.csv" and data.label_names == ["grade bar", "grade ring"]
    assert data.errors == []  # labels.csv is not an image
    assert int((np.concatenate([data.train_labels, data.heldout_labels]) < 0).sum()) == 2
    assert any("1 row(s)" in n for n in data.label_notes)
    # a flat folder without labels has none; asking for subfolders there is refused
    assert read_labels(flat, ["a.png", "b.png"], "auto")[0] == {}
    with pytest.raises(ValueError, match="class subfolders"):
        read_labels(flat, ["a.png", "b.png"], "subfolders")
    with pytest.raises(ValueError, match="no such file"):
        read_labels(flat, ["a.png"], str(tmp_path / "missing.csv"))


def test_calibration_error_against_a_direct_count():
    """The expected calibration error equals a per-bin count written out by hand."""
    from audit_engine.training.classifier import calibration_error

    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, 500)
    correct = rng.uniform(size=500) < conf**2
    total = 0.0
    for b in range(15):
        lo, hi = b / 15, (b + 1) / 15
        inside = [(c, r) for c, r in zip(conf, correct) if (lo < c <= hi) or (b == 0 and c <= hi)]
        if inside:
            acc = sum(r for _, r in inside) / len(inside)
            mean = sum(c for c, _ in inside) / len(inside)
            total += len(inside) / 500 * abs(acc - mean)
    assert calibration_error(conf, correct) == pytest.approx(total, rel=1e-12)
    assert calibration_error(np.ones(10), np.ones(10, bool)) == 0.0


def test_the_architecture_is_chosen_by_size_and_channels():
    from audit_engine.attacker.attributes import AttributeCNN, architecture

    assert architecture(32, 1)["widths"] == [32, 64]
    assert architecture(256, 3)["widths"] == [32, 64, 128, 256, 256]
    for size, ch in ((16, 1), (64, 3), (256, 3)):
        m = AttributeCNN(architecture(size, ch), ["a", "b", "c"])
        assert m(torch.rand(2, ch, size, size)).shape == (2, 3)
    with pytest.raises(ValueError, match="power-of-two"):
        architecture(48, 1)


def test_the_embedded_classifier_is_one_instance_of_the_same_code():
    """The shipped digit classifier loads into the generic AttributeCNN from its description,
    and classifier.json is what scripts/train_classifier.py measures now."""
    import subprocess
    import sys

    from audit_engine.attacker.attributes import AttributeCNN, load_classifier
    from audit_engine.audit.verdict import NEAR_DOMAIN_CAVEAT

    clf = load_classifier(EMBEDDED)
    assert type(clf) is AttributeCNN and clf.name == "digit class"
    assert clf.labels == [str(d) for d in range(10)] and clf.caveat == NEAR_DOMAIN_CAVEAT
    spec = json.loads((EMBEDDED / "classifier.json").read_text())
    assert 0.95 < spec["heldout"]["accuracy"] and spec["heldout"]["calibration_error"] < 0.05
    done = subprocess.run(
        [sys.executable, "scripts/train_classifier.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_train_prior_ships_a_measured_classifier_of_the_named_attribute(trained):
    out, info = trained
    a = info["attribute"]
    assert a["trained"] and a["attribute"] == "shape" and a["labels"] == ["bar", "ring"]
    assert a["labels_from"] == "subfolders" and a["trained_on"].endswith("training split only")
    h = a["heldout"]
    assert h["images"] > 10 and h["accuracy"] > 0.9, h  # rings against bars: easy
    assert 0 <= h["calibration_error"] < 0.2 and set(h["per_label"]) == {"bar", "ring"}
    assert json.loads((out / "classifier.json").read_text())["heldout"] == h
    saved = json.loads((out / "training.json").read_text())
    assert saved["attribute"]["heldout"] == h and saved["data"]["labels"]["names"] == [
        "bar",
        "ring",
    ]
    # the held-out images were never trained on, by the prior or by the classifier
    split = json.loads((out / "split.json").read_text())
    assert h["images"] == len(split["heldout"])
    # the card reports it
    from audit_engine.training.card import render

    card = render(saved, out.name)
    assert "## Attribute audited" in card and "**shape**" in card and "calibration" in card


def test_the_audit_speaks_of_the_attribute_by_name(trained):
    """The audit reads the original with the folder's label names; at mu 20 the release
    gives the shape away, at mu 0.1 the DP bound proves it hidden."""
    from audit_engine import run_audit

    out, _ = trained
    held = np.load(out / "heldout.npz")["images"]
    split = json.loads((out / "split.json").read_text())
    k = next(i for i, f in enumerate(split["heldout"]) if f.startswith("ring/"))
    res = run_audit(
        torch.from_numpy(held[k]).float() / 255,
        mus=[0.1, 20.0],
        prior=str(out),
        trials=2,
        max_trials=2,
        lpips=None,
        steps=2,
    )
    assert res.attribute["name"] == "shape" and res.attribute["original"] == "ring"
    low, high = res.verdicts
    assert low.attribute.level == "not revealed" and low.attribute.prior.proven
    assert high.attribute.level == "revealed" and "release" in high.attribute.by
    assert '"ring"' in high.attribute.sentence() and "shape" in high.attribute.sentence()
    v = res.verdicts_json()
    assert v["attribute"]["name"] == "shape" and v["attribute"]["original"] == "ring"


def test_a_prior_without_labels_says_there_is_no_attribute_and_why(tmp_path):
    from audit_engine.attacker.attributes import attribute_name, no_attribute_reason
    from audit_engine.attacker.priors import load_prior
    from audit_engine.training.train import TrainConfig, train_prior

    flat = tmp_path / "flat"
    for k, x in enumerate(ring_images(30, 16, seed=5)):
        _save(x, flat / f"r{k:03d}.png")
    with pytest.raises(ValueError, match="--attribute grade needs labels"):
        train_prior(
            flat, tmp_path / "p0", TrainConfig(size=16, steps=1, attribute="grade"), fitness=False
        )
    assert not (tmp_path / "p0" / "training.json").exists()  # refused before any training
    info = train_prior(flat, tmp_path / "p1", TrainConfig(size=16, steps=1), fitness=False)
    assert not info["attribute"]["trained"] and "no labels" in info["attribute"]["why"]
    prior = load_prior(str(tmp_path / "p1"), device="cpu")
    why = no_attribute_reason(prior)
    assert "no labels" in why and attribute_name(tmp_path / "p1") is None
    from audit_engine import run_audit

    res = run_audit(
        ring_images(1, 16, seed=9)[0],
        mus=[1.0],
        prior=prior,
        trials=1,
        verdicts=False,
        lpips=None,
        steps=2,
    )
    assert res.attribute is None and res.attribute_note() == why

    class Hub:  # a Hub prior: no folder of ours, no classifier
        name, folder, channels, sample_size = "google/ddpm-cifar10-32", None, 3, 32

    assert "ships no attribute classifier" in no_attribute_reason(Hub())


def test_the_search_offers_the_prior_s_attribute_by_name():
    from audit_engine.attacker.priors import EMBEDDED
    from audit_engine.session import actions
    from webui import handlers as h

    radio = h.level_choices(EMBEDDED)
    assert ("digit class not revealed", "no attribute") in [tuple(c) for c in radio.choices]
    choices, why = actions.level_choices(EMBEDDED)  # the same without Gradio
    assert ("digit class not revealed", "no attribute") in choices and why is None


def test_the_release_attacker_holds_the_labelled_training_images_never_the_image(
    trained, monkeypatch
):
    """attack-pool.npz holds the labelled training images; the prior-free attacker's pool is
    the held-out images and those, without the audited image even when it is one of them."""
    from audit_engine import run_audit
    from audit_engine.audit import verdict

    out, info = trained
    with np.load(out / "attack-pool.npz") as z:
        images, labels = z["images"], z["labels"]
    assert len(images) == info["data"]["train"] == info["attribute"]["attack_pool"]
    assert set(labels.tolist()) == {0, 1}
    seen = {}
    real = verdict.release_attribute_attack

    def spy(x, pool, pool_labels, **kw):
        seen["pool"], seen["x"], seen["c"] = pool, x, kw["clip_norm"]
        return real(x, pool, pool_labels, **kw)

    monkeypatch.setattr(verdict, "release_attribute_attack", spy)
    x = torch.from_numpy(images[0]).float() / 255  # a training image audited
    run_audit(x, mus=[20.0], prior=str(out), trials=2, max_trials=2, lpips=None, steps=2)
    held = len(np.load(out / "heldout.npz")["images"])
    assert len(seen["pool"]) == held + len(images) - 1  # every image but itself
    from audit_engine.maths.mechanism import clip_to

    released = clip_to(seen["x"][None], seen["c"]).flatten()
    assert (seen["pool"].flatten(1) - released[None]).abs().amax(1).min() > 1 / 255


def test_the_temperature_minimises_the_validation_nll_and_needs_errors_to_fit():
    """The grid search's temperature against scipy's bounded minimiser of the same NLL; a
    classifier without an error on the validation part keeps temperature 1."""
    import torch.nn.functional as F
    from scipy.optimize import minimize_scalar

    from audit_engine.attacker.attributes import AttributeCNN, architecture
    from audit_engine.training.classifier import _fit_temperature

    torch.manual_seed(0)
    model = AttributeCNN(architecture(16, 1), ["a", "b", "c"]).eval()
    x = torch.rand(200, 1, 16, 16)
    with torch.no_grad():
        logits = model.logits(x) * 8  # overconfident
    model.logits = lambda images: logits[: len(images)]  # the same logits, whatever the batch
    y = torch.randint(0, 3, (200,), generator=torch.Generator().manual_seed(1))
    t = _fit_temperature(model, x, y)
    best = minimize_scalar(
        lambda lt: float(F.cross_entropy(logits / np.exp(lt), y)),
        bounds=(np.log(0.05), np.log(20)),
        method="bounded",
    )
    assert t == pytest.approx(float(np.exp(best.x)), rel=0.05) and t > 1
    assert _fit_temperature(model, x, logits.argmax(1)) == 1.0  # no error: nothing to fit
