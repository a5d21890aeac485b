"""The mathematics: pure functions, no model. Each formula cites its equation in
docs/METHOD.md and is tested against a second, independent computation.

    accounting   exact mu-GDP <-> (eps, delta) conversions, DP-SGD budgets
    mechanism    the release: clip_C(x) + (C / mu) xi, analytic and through Opacus
    schedule     timestep matching: the diffusion step whose noise equals the release's
    bounds       theoretical reconstruction bounds against the budget
    budgets      an image's own budget, and the budget an attack demonstrates
    streams      seeded random streams keyed by (seed, image, trial, purpose)
"""
