"""Visual privacy auditing with diffusion models: the engine behind the dashboard.

Modules: accounting (eps <-> mu), mechanism (privatization), schedule (timestep
matching), reconstruct (reverse diffusion), priors, metrics, audit (run_audit), report.
Images are float tensors in [0, 1] throughout the public API.
"""
__version__ = "0.1.0"
