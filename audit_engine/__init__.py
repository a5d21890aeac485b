"""Visual privacy auditing with diffusion models: the engine behind the dashboard.

Images are float tensors in [0, 1] throughout the public API. The engine never imports
gradio (the web app is webui/ and app.py). docs/ARCHITECTURE.md draws how data flows.

    maths/      the mathematics, pure functions: accounting, mechanism, schedule, bounds,
                streams
    attacker/   the attacker: priors (the registry; add a prior here), reconstruct,
                pipeline, metrics, attacks, attributes
    audit/      the audit and its verdicts: run (run_audit), verdict (the rule, top to
                bottom), reference (reference sets, domain check), solve, prepare, costs
    outputs/    what an audit writes: page (the HTML skeleton of every report), report,
                plots
    session/    the dashboard's state without gradio: ladder (Session), views
    batch/      many images, resumable, locally or on Ray; the data set's summaries
    reproduce/  the source paper's experiment on any prior
    training/   train-prior: a folder of your images made into a prior, with its fitness
                report and model card
    images, caches, files, progress, docblocks: decoding images, thread-safe caches,
                atomic writes, the one progress protocol, the docs' generated blocks
    cli         the command line (``privacy-audit`` or ``python -m audit_engine``)

The names below are the public API, importable from ``audit_engine`` directly (each is
loaded on first use, so ``import audit_engine`` stays cheap):

    from audit_engine import run_audit, solve_budget, load_prior, eps_from_mu
"""

__version__ = "0.1.0"

# public name -> the module defining it (loaded lazily, PEP 562)
_PUBLIC = {
    "audit_engine.maths.accounting": [
        "eps_from_mu",
        "mu_from_eps",
        "delta_from_eps_mu",
        "noise_multiplier_from_mu",
        "mu_from_noise_multiplier",
        "dpsgd_budget",
        "DPSGDBudget",
    ],
    "audit_engine.maths.mechanism": ["privatize", "privatize_dpsgd", "noise_std"],
    "audit_engine.maths.schedule": ["match_timestep", "TimestepMatch"],
    "audit_engine.maths.bounds": ["rero_bound_gdp", "rero_bound_dp"],
    "audit_engine.attacker.priors": [
        "load_prior",
        "Prior",
        "PriorSpec",
        "PriorUnavailable",
        "REGISTRY",
        "EMBEDDED",
    ],
    "audit_engine.attacker.reconstruct": ["reconstruct", "sample"],
    "audit_engine.audit.run": ["run_audit", "continue_audit", "AuditResult", "AuditSample"],
    "audit_engine.audit.verdict": ["BudgetVerdict", "AttackVerdict", "LABELS", "TOLERANCE"],
    "audit_engine.audit.solve": ["solve_budget", "dataset_budget", "SolveResult", "NotSolvable"],
    "audit_engine.audit.reference": ["reference_for", "Reference"],
    "audit_engine.audit.prepare": ["prepare"],
    "audit_engine.outputs.report": ["write_outputs"],
    "audit_engine.batch.config": ["BatchConfig"],
    "audit_engine.batch.run": ["run_batch"],
    "audit_engine.images": ["open_image", "ImageError"],
    "audit_engine.training.train": ["train_prior", "TrainConfig"],
}
_WHERE = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = ["__version__", *_WHERE]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'audit_engine' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
