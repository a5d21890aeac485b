"""The dashboard's engine side: slider mapping, ladder, views, report, calculator."""
import time

import torch

import pytest

from audit_engine import accounting
from audit_engine import dashboard as db


@pytest.mark.parametrize("mode", ["eps", "mu"])
def test_slider_round_trip(mode):
    for v in (-0.5, 0.0, 1.3, 2.0):
        mu, eps = db.slider_to_mu(v, mode, 1e-5)
        assert eps == pytest.approx(accounting.eps_from_mu(mu, 1e-5), rel=1e-9)
        assert db.mu_to_slider(mu, mode, 1e-5) == pytest.approx(v, abs=1e-9)
    with pytest.raises(ValueError):
        db.slider_to_mu(float("nan"), mode, 1e-5)


def test_slider_spans_orders_of_magnitude():
    lo, hi = db.SLIDER_RANGE["eps"]
    assert hi - lo >= 5  # eps 0.1 .. 100,000


def test_ladder_spans_useless_to_strong(tiny_prior, digit_image):
    mus = db.ladder_mus(float(digit_image.norm()))
    assert len(mus) == 8 and mus == sorted(mus)
    s = db.compute_ladder(digit_image, db.Settings(prior=tiny_prior.source, steps=3, lpips="alex"))
    views = [db.view_budget(s, m) for m in mus]
    assert views[0].beyond_range  # the strongest protection: beyond the prior's range
    assert views[-1].samples[0].t_star < 20  # the weakest: hardly any noise
    assert all(v.exact for v in views)


def test_slider_moves_are_served_from_the_ladder(tiny_prior, digit_image):
    settings = db.Settings(prior=tiny_prior.source, steps=3, lpips="alex")
    s = db.compute_ladder(digit_image, settings, current_mu=7.0)
    assert 7.0 in s.exact and 7.0 not in s.ladder.budgets()
    t0 = time.perf_counter()
    v = db.view_budget(s, 8.0)
    assert time.perf_counter() - t0 < 0.5
    assert not v.exact and v.mu in s.ladder.budgets() + [7.0]
    s2, res = db.compute_exact(s, 8.0)
    assert db.view_budget(s2, 8.0).exact and res.samples[0].mu == 8.0
    assert not db.view_budget(s, 8.0).exact  # the session passed in is left as it was
    # the same image and settings reuse the session
    assert db.compute_ladder(digit_image, settings, current_mu=7.0, previous=s) is s


def test_report_is_self_contained(tiny_prior, digit_image):
    s = db.compute_ladder(digit_image, db.Settings(prior=tiny_prior.source, steps=2, trials=2,
                                                   lpips="alex"), current_mu=5.0)
    html = db.report_html(s, "eps", 5.0)
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert "plotly" in html and "package torch" in html and "date (UTC)" in html
    assert "trials per budget" in html and tiny_prior.source in html
    assert "identified among 10" in html and "spread map across trials" in html
    assert "src=\"http" not in html and "src='http" not in html  # nothing fetched online


def test_dpsgd_text():
    text, mu = db.dpsgd_text(0.5, 1.0, 1, 1e-5)
    assert mu == 2.0 and "exact" in text and "PRV" in text and "RDP" in text
    text, mu = db.dpsgd_text(1.0, 0.01, 1000, 1e-5)
    assert "approximation" in text


def test_prior_choices_put_embedded_first():
    choices = db.prior_choices()
    assert choices[0][1] == "embedded" and "[" in choices[0][0]


def test_metrics_markdown_explains_each_metric(tiny_prior, digit_image):
    s = db.compute_ladder(digit_image, db.Settings(prior=tiny_prior.source, steps=2, lpips="alex"))
    md = db.view_budget(s, s.ladder.budgets()[3]).metrics_markdown(s.ladder.lpips)
    for name in ("LPIPS", "SSIM", "PSNR", "MSE"):
        assert name in md
    assert "unavailable" in md  # no LPIPS backbone offline: said so


def test_large_priors_stream_the_chosen_budget_first(tiny_prior, digit_image, monkeypatch):
    """Above STREAM_ABOVE pixels the chosen budget comes first, then one ladder budget at a
    time; the last session holds what one batched pass gives (the same noise streams)."""
    settings = db.Settings(prior=tiny_prior.source, steps=2, trials=2, lpips=None)
    batched = db.compute_ladder(digit_image, settings, current_mu=7.0)
    monkeypatch.setattr(db, "STREAM_ABOVE", 8)  # the 16-pixel tiny prior now streams
    messages = []
    steps = list(db.ladder_steps(digit_image, settings, current_mu=7.0,
                                 progress=lambda f, m: messages.append((f, m))))
    assert len(steps) == 1 + db.LADDER_SIZE
    first = steps[0]
    assert first.pending == db.LADDER_SIZE and db.view_budget(first, 7.0).exact
    assert [s.pending for s in steps[1:]] == list(range(db.LADDER_SIZE - 1, -1, -1))
    last = steps[-1]
    assert last.ladder.budgets() == batched.ladder.budgets()
    for mu in batched.ladder.budgets() + [7.0]:
        a, b = db.view_budget(last, mu), db.view_budget(batched, mu)
        assert a.label == b.label
        for sa, sb in zip(a.samples, b.samples):
            torch.testing.assert_close(sa.observation, sb.observation)
            torch.testing.assert_close(sa.reconstruction, sb.reconstruction, atol=1e-4, rtol=0)
    fractions = [f for f, _ in messages]
    assert fractions == sorted(fractions) and any("s left" in m for _, m in messages)
    # a stream stopped half-way is computed again; a complete one is reused
    assert len(list(db.ladder_steps(digit_image, settings, current_mu=7.0,
                                    previous=steps[3]))) == 1 + db.LADDER_SIZE
    assert list(db.ladder_steps(digit_image, settings, current_mu=7.0, previous=last)) == [last]
