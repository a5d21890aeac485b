"""Visual privacy auditing with diffusion models: the engine behind the dashboard.

Images are float tensors in [0, 1] throughout the public API. The engine never imports
gradio (the web app is webui/ and app.py). docs/ARCHITECTURE.md draws how data flows.

The mathematics (pure functions, no model):
    accounting   exact mu-GDP <-> (eps, delta) conversions, DP-SGD budgets
    mechanism    privatization: the analytic Gaussian release and a real Opacus step
    schedule     timestep matching: the diffusion step whose noise equals the release's
    bounds       theoretical reconstruction bounds against the budget
    streams      seeded random streams keyed by (seed, image, trial, purpose)
    images       decoding and the one place pixel ranges are converted

The attack:
    priors       the registry of diffusion priors and their loading (offline-first)
    reconstruct  the reverse process (DDIM, DDPM) from the matched timestep, batched
    pipeline     the paper's algorithm once: observe (privatize, match) and attack
    metrics      LPIPS, SSIM, PSNR, MSE
    attacks      comparison attacks, the gallery (likelihood) attack, identification among
                 decoys, the unrelated-image baseline
    attributes   the attribute classifier (digit class for the embedded prior)

Verdicts and audits:
    reference    each prior's reference set (images of its kind, its own samples), domain check
    verdict      both attackers' rates against chance: evidence both ways, sequential looks
    audit        run_audit: one image at several budgets, every trial, with verdicts
    batch        a folder of images, resumable; distributed runs it on Ray
    solve        the largest budget keeping a level, per image and per data set (solve_report)
    reproduce    the paper's experiment (package): data, experiment, statistics, figures, tables

What the dashboard and the reports show:
    dashboard    settings, the slider's mapping and one image's budget ladder (LadderCache)
    views        one budget's view in words and pictures, pinned budgets, the report
    plots        plotly figures; report: grids, CSV/JSON/HTML exports
    caches       build-once caches safe under the dashboard's threads
    prepare      a prior prepared ahead of time (and the app's background Preparer)
    costs        seconds per UNet evaluation here, for estimates before long work
"""
__version__ = "0.1.0"
