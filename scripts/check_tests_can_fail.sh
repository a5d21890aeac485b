#!/bin/bash
# Shows that the tests made able to fail (issue 16) do fail: each line breaks the
# implementation on purpose, runs the test that guards it, expects a failure, and restores
# the file. Run from anywhere: bash scripts/check_tests_can_fail.sh
cd "$(dirname "$0")/.."
BAK=$(mktemp); LOG=$(mktemp)
run() {  # file old new tests...
  f=$1; old=$2; new=$3; shift 3
  cp "$f" "$BAK"
  python3 - "$f" "$old" "$new" <<'PY'
import sys; p,o,n=sys.argv[1:4]; s=open(p).read(); assert o in s, ("not found", o); open(p,'w').write(s.replace(o,n,1))
PY
  if .venv/bin/python -m pytest -q -p no:cacheprovider -x "$@" > "$LOG" 2>&1; then
    echo "SURVIVED (bad): $f :: $old -> $new :: $*"
  else
    echo "killed: $(grep -m1 -o 'FAILED [^ ]*' "$LOG") :: $old -> $new"
  fi
  cp "$BAK" "$f"
}
run audit_engine/priors.py 'return abar.sqrt() * out + (1 - abar).sqrt() * x_t' 'return abar.sqrt() * out - (1 - abar).sqrt() * x_t' tests/test_priors.py -k prediction_types
run audit_engine/priors.py 'return (x_t - abar.sqrt() * out) / (1 - abar).sqrt()' 'return (x_t - abar * out) / (1 - abar).sqrt()' tests/test_priors.py -k prediction_types
run audit_engine/priors.py 'return Path(snapshot_download(repo_id, local_files_only=True))' 'return None' tests/test_priors.py -k hub_cache
run audit_engine/priors.py 'chosen = {EMBEDDED: REGISTRY[EMBEDDED]}' 'chosen = {}' tests/test_priors.py -k embedded_prior_first
run audit_engine/metrics.py 'win = min(7, h if h % 2 else h - 1, w if w % 2 else w - 1)' 'win = min(5, h if h % 2 else h - 1, w if w % 2 else w - 1)' tests/test_metrics.py -k formula
run audit_engine/caches.py 'return self.clock() - built < self._retry_after' 'return True' tests/test_metrics.py -k retried
run audit_engine/images.py 'ImageOps.exif_transpose(' '(lambda im, **k: im)(' tests/test_security.py -k metadata
run audit_engine/views.py 'def view_budget(session: LadderCache, mu: float) -> BudgetView:
    return _view(*session.result_for(mu))' 'def view_budget(session: LadderCache, mu: float) -> BudgetView:
    compute_exact(session, mu)
    return _view(*session.result_for(mu))' tests/test_dashboard.py -k served_from
run audit_engine/dashboard.py 'SLIDER_RANGE = {"eps": (-1.0, 5.0)' 'SLIDER_RANGE = {"eps": (-1.0, 4.0)' tests/test_dashboard.py -k orders_of_magnitude
run audit_engine/views.py 'lines.append(f"\n_{lpips_note}_")' 'pass' tests/test_dashboard.py -k metrics_markdown
run audit_engine/images.py 'return MODEL_SCALE * pixel_std' 'return pixel_std' tests/test_pipeline.py
run audit_engine/reconstruct.py 'return abar_s.sqrt() * x0 + (1 - abar_s).sqrt() * eps' 'return abar_s.sqrt() * x0 + (1 - abar_s) * eps' tests/test_reconstruct.py -k ddim_matches
run audit_engine/reconstruct.py 'var = ((1 - abar_s) / (1 - abar_t) * beta).clamp(min=1e-20)' 'var = (beta).clamp(min=1e-20)' tests/test_reconstruct.py -k ddpm_matches
run audit_engine/streams.py '    if int(words[-1]) == 0:' '    if False:' tests/test_pipeline.py -k keyed
run webui/handlers.py '    return (*_budget_outputs(session, mu, mode, plots=False), readout_text(slider, mode, delta))' '    db.compute_exact(session, mu)
    return (*_budget_outputs(session, mu, mode, plots=False), readout_text(slider, mode, delta))' tests/test_app.py -k gradio_client
run audit_engine/reference.py 'return np.concatenate([errors, image_statistics(images)], axis=1)' 'return np.concatenate([errors, 0 * image_statistics(images)], axis=1)' tests/test_embedded_prior.py -k simple_images
run audit_engine/reference.py '(grey.std(1, correction=0) + 1 / 255).log()' '(grey.std(1, correction=1) + 1 / 255).log()' tests/test_audit.py -k image_statistics
run scripts/model_card.py "f\"{s['training_minutes']:.1f}" "f\"{s['training_minutes']:.0f}" tests/test_docs.py -k model_card
run scripts/model_card.py 'if stage.get("dropout", 0.0) != before:' 'if stage.get("dropout", 0.0):' tests/test_docs.py -k dropout
run scripts/identification_estimators.py '    same[i] = False' '    pass' tests/test_docs.py -k closeness
run scripts/sample_split.py 'use_high = t >= self.split' 'use_high = t > self.split' tests/test_docs.py -k split_unet
