"""The dashboard's engine side: slider mapping, ladder, views, report, calculator."""

from pathlib import Path

import pytest
import torch

from audit_engine.maths import accounting
from audit_engine.session import ladder as db
from audit_engine.session import views


@pytest.mark.parametrize("mode", ["eps", "mu"])
def test_slider_round_trip(mode):
    for v in (-0.5, 0.0, 1.3, 2.0):
        mu, eps = db.slider_to_mu(v, mode, 1e-5)
        assert eps == pytest.approx(accounting.eps_from_mu(mu, 1e-5), rel=1e-9)
        assert db.mu_to_slider(mu, mode, 1e-5) == pytest.approx(v, abs=1e-9)
    with pytest.raises(ValueError):
        db.slider_to_mu(float("nan"), mode, 1e-5)


def test_slider_spans_orders_of_magnitude():
    """The slider's ends are eps 0.1 (strong) and 100,000 (none), mu 0.05 and 500; beyond
    them a position is refused with the range in the message."""
    lo, hi = db.SLIDER_RANGE["eps"]
    assert db.slider_to_mu(lo, "eps", 1e-5)[1] == pytest.approx(0.1)
    assert db.slider_to_mu(hi, "eps", 1e-5)[1] == pytest.approx(1e5)
    lo, hi = db.SLIDER_RANGE["mu"]
    assert db.slider_to_mu(lo, "mu", 1e-5)[0] == pytest.approx(0.05)
    assert db.slider_to_mu(hi, "mu", 1e-5)[0] == pytest.approx(500)
    with pytest.raises(ValueError, match="between"):
        db.slider_to_mu(hi + 0.1, "mu", 1e-5)


def test_ladder_spans_useless_to_strong(tiny_prior, digit_image):
    s = db.compute_ladder(digit_image, db.Settings(prior=tiny_prior.source, steps=3, lpips="alex"))
    # the ladder comes from the public clipping bound, never from the image's own norm
    mus = db.ladder_mus(s.ladder.clip_norm * s.ladder.attacker_scale)
    assert len(mus) == 8 and mus == sorted(mus)
    assert s.ladder.budgets() == pytest.approx(mus)
    other = db.compute_ladder(
        digit_image * 0.5, db.Settings(prior=tiny_prior.source, steps=3, lpips=None)
    )
    assert other.ladder.budgets() == pytest.approx(mus)
    shown = [views.view_budget(s, m) for m in mus]
    assert shown[0].beyond_range  # the strongest protection: beyond the prior's range
    assert shown[-1].samples[0].t_star < 20  # the weakest: hardly any noise
    assert all(v.exact for v in shown)


def _count_unet_calls(monkeypatch) -> list:
    """A list that grows by one at every UNet evaluation of any prior."""
    from audit_engine.attacker.priors import Prior

    calls, real = [], Prior.predict_eps

    def counting(self, x_t, t):
        calls.append(len(x_t))
        return real(self, x_t, t)

    monkeypatch.setattr(Prior, "predict_eps", counting)
    return calls


def test_slider_moves_are_served_from_the_ladder(tiny_prior, digit_image, monkeypatch):
    settings = db.Settings(prior=tiny_prior.source, steps=3, lpips="alex")
    s = db.compute_ladder(digit_image, settings, current_mu=7.0)
    assert 7.0 in s.exact and 7.0 not in s.ladder.budgets()
    calls = _count_unet_calls(monkeypatch)
    v = views.view_budget(s, 8.0)
    assert calls == []  # a move is read from the ladder: no UNet call
    assert not v.exact and v.mu in s.ladder.budgets() + [7.0]
    s2, res = db.compute_exact(s, 8.0)
    assert calls  # an exact budget between ladder points is computed
    assert views.view_budget(s2, 8.0).exact and res.samples[0].mu == 8.0
    calls.clear()
    assert db.compute_exact(s2, 8.0)[0] is s2 and calls == []  # and then kept
    assert not views.view_budget(s, 8.0).exact  # the session passed in is left as it was
    # the same image and settings reuse the session
    assert db.compute_ladder(digit_image, settings, current_mu=7.0, previous=s) is s


def test_report_is_self_contained(tiny_prior, digit_image):
    s = db.compute_ladder(
        digit_image,
        db.Settings(prior=tiny_prior.source, steps=2, trials=2, lpips="alex"),
        current_mu=5.0,
    )
    html = views.report_html(s, "eps", 5.0)
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert "plotly" in html and "date (UTC)" in html
    assert "<h2>Versions</h2>" in html and "<th scope='row'>torch</th>" in html
    assert "trials per budget" in html and Path(tiny_prior.source).name in html
    assert tiny_prior.source not in html  # the prior named without the server's folders
    assert "verdict (the evidence below)" in html and "spread map across trials" in html
    assert "The largest safe budget" not in html  # no search yet
    from dataclasses import replace

    searched = views.report_html(replace(s, search="Up to eps = 1.05 (...)."), "eps", 5.0)
    assert "<h2>The largest safe budget</h2><p>Up to eps = 1.05 (...).</p>" in searched
    assert "clip_C(x) + (C / mu) xi" in html and "verdict rule" in html
    assert 'src="http' not in html and "src='http" not in html  # nothing fetched online


def test_dpsgd_text():
    text, mu = views.dpsgd_text(0.5, 1.0, 1, 1e-5)
    assert mu == 2.0 and "exact" in text and "PRV" in text and "RDP" in text
    text, mu = views.dpsgd_text(1.0, 0.01, 1000, 1e-5)
    assert "approximation" in text


def test_prior_choices_put_embedded_first():
    choices = db.prior_choices()
    assert choices[0][1] == "embedded" and "[" in choices[0][0]


def test_metrics_markdown_explains_each_metric(tiny_prior, digit_image):
    s = db.compute_ladder(digit_image, db.Settings(prior=tiny_prior.source, steps=2, lpips="alex"))
    md = views.view_budget(s, s.ladder.budgets()[3]).metrics_markdown(s.ladder.lpips_note)
    for name in ("LPIPS", "SSIM", "PSNR", "MSE"):
        assert name in md
    lpips_row = next(line for line in md.splitlines() if line.startswith("| LPIPS"))
    # without a backbone (offline, not cached) the page says so and shows no LPIPS number;
    # with one, the row has numbers and no note
    assert ("unavailable" in md) == (not s.ladder.lpips_available)
    assert ("n/a" in lpips_row) == (not s.ladder.lpips_available)


def test_large_priors_stream_the_chosen_budget_first(tiny_prior, digit_image, monkeypatch):
    """Above STREAM_ABOVE pixels the chosen budget comes first, then one ladder budget at a
    time; the last session holds what one batched pass gives (the same noise streams)."""
    settings = db.Settings(prior=tiny_prior.source, steps=2, trials=2, lpips=None)
    batched = db.compute_ladder(digit_image, settings, current_mu=7.0)
    monkeypatch.setattr(db, "STREAM_ABOVE", 8)  # the 16-pixel tiny prior now streams
    messages = []
    steps = list(
        db.ladder_steps(
            digit_image, settings, current_mu=7.0, progress=lambda f, m: messages.append((f, m))
        )
    )
    assert len(steps) == 1 + db.LADDER_SIZE
    first = steps[0]
    assert first.pending == db.LADDER_SIZE and views.view_budget(first, 7.0).exact
    assert [s.pending for s in steps[1:]] == list(range(db.LADDER_SIZE - 1, -1, -1))
    last = steps[-1]
    assert last.ladder.budgets() == batched.ladder.budgets()
    for mu in batched.ladder.budgets() + [7.0]:
        a, b = views.view_budget(last, mu), views.view_budget(batched, mu)
        assert a.label == b.label
        for sa, sb in zip(a.samples, b.samples):
            torch.testing.assert_close(sa.observation, sb.observation)
            torch.testing.assert_close(sa.reconstruction, sb.reconstruction, atol=1e-4, rtol=0)
    fractions = [f for f, _ in messages]
    assert fractions == sorted(fractions) and any("s left" in m for _, m in messages)
    # a stream stopped half-way is computed again; a complete one is reused
    assert (
        len(list(db.ladder_steps(digit_image, settings, current_mu=7.0, previous=steps[3])))
        == 1 + db.LADDER_SIZE
    )
    assert list(db.ladder_steps(digit_image, settings, current_mu=7.0, previous=last)) == [last]


def test_the_budget_box_takes_the_budget_itself():
    """Typing 8 means eps 8 (the slider at log10 8); a budget off the slider's range is
    refused with a sentence and moves nothing."""
    import math

    assert db.budget_to_slider(8, "eps") == pytest.approx(math.log10(8))
    mu, eps = db.slider_to_mu(db.budget_to_slider(8, "eps"), "eps", 1e-5)
    assert eps == pytest.approx(8)
    assert db.budget_to_slider("2.5", "mu") == pytest.approx(math.log10(2.5))
    for bad in (1e8, 0, -3, float("nan"), "eight"):
        with pytest.raises(ValueError) as err:
            db.budget_to_slider(bad, "eps")
        text = str(err.value)
        assert text[0].isupper() and text.endswith(".") and "Error" not in text


def test_an_image_outside_the_domain_gets_its_warning_and_nothing_else():
    """Outside the prior's domain the warning is the whole answer (no "No verdict: 500
    held-out images ..."); without a reference set the reason reads as a sentence."""
    from audit_engine.audit.verdict import DomainCheck
    from audit_engine.session.views import BudgetView

    def view(domain, reference):
        return BudgetView(
            mu=1.0,
            eps=1.0,
            exact=True,
            samples=[],
            verdict=None,
            domain=domain,
            spread=torch.zeros(1, 2, 2),
            beyond_range=False,
            reference=reference,
        )

    text = view(
        DomainCheck(
            in_domain=False, score=30.0, percentile=100.0, threshold=7.7, tail="more complex"
        ),
        "500 held-out images shipped with the prior",
    ).verdict_markdown()
    assert "outside what the prior knows" in text and "held-out" not in text
    assert "No verdict" not in text
    text = view(None, "no reference set, so no verdict: offline").verdict_markdown()
    assert text == "No reference set, so no verdict: offline."
