"""The attacker: a diffusion prior and what it makes of a release.

priors       the registry of priors (add one here) and their loading, offline-first
reconstruct  the reverse process (DDIM, DDPM) from the matched timestep, batched
pipeline     the paper's algorithm once: observe (privatize, match) and attack
metrics      LPIPS, SSIM, PSNR, MSE
attacks      the gallery (likelihood) attack, identification among look-alikes,
             comparison attacks, the unrelated-image baseline
attributes   the attribute classifier (digit class for the embedded prior)
"""
