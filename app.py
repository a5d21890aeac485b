"""Visual privacy audit: the Gradio dashboard. Layout and wiring only: the events are in
webui/handlers.py, the work in audit_engine (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a privacy tool does not phone home

from webui.memory import limit_arenas  # noqa: E402  (before any worker thread allocates)

limit_arenas()

import gradio as gr

from audit_engine.attacker.reconstruct import DEFAULT_DDIM_STEPS
from audit_engine.audit.run import MAX_TRIALS
from audit_engine.outputs.report import CAVEATS
from audit_engine.session import actions
from webui import handlers as h
from webui.components import (
    CLICK_REPORT,
    CSS,
    THEME,
    UPLOAD_TEXT,
    Number,
    Slider,
    UploadedImage,
    example_label,
    slider_label,
)
from webui.config import (
    DEFAULT_PRIOR,
    EXAMPLES,
    MAX_DATASET,
    MAX_SESSIONS,
    MAX_UPLOAD,
    MODEL_CONCURRENCY,
    QUEUE_SIZE,
    SESSION_TTL,
    check_launch_environment,
)
from webui.texts import DATASET_INTRO, INTRO, WHAT

with gr.Blocks(title="Visual privacy audit", delete_cache=(600, 1800)) as demo:
    # one visitor's ladder, dropped SESSION_TTL s after its last change (MAX_SESSIONS at most)
    session = gr.State(None, time_to_live=SESSION_TTL)
    # the tolerance field's value, as state: the API's /audit keeps its parameters (clients
    # that pass the clipping bound last still call it as before) and uses the default 10
    tolerance_state = gr.State(10, time_to_live=SESSION_TTL)
    gr.Markdown(INTRO)
    with gr.Accordion("What am I looking at?", open=False):
        gr.Markdown(WHAT + "\n\n**Caveats**\n" + "\n".join(f"- {c}" for c in CAVEATS))
    with gr.Tab("One image"):
        with gr.Row():
            with gr.Column(scale=1):
                image = UploadedImage(
                    label="Image",
                    type="filepath",
                    image_mode=None,
                    format="png",
                    sources=["upload", "clipboard"],
                    height=260,
                    elem_id="input-image",
                    placeholder=UPLOAD_TEXT,
                )
                gr.Examples(
                    examples=[[p] for p in EXAMPLES],
                    inputs=[image],
                    label="Examples",
                    examples_per_page=20,
                    example_labels=[example_label(p) for p in EXAMPLES],
                )
                prior = gr.Dropdown(
                    choices=h.prior_choices(),
                    value=DEFAULT_PRIOR,
                    label="Prior (the attacker's knowledge)",
                )
                with gr.Row():
                    mode = gr.Radio(
                        [("eps (with delta)", "eps"), ("mu (Gaussian DP)", "mu")],
                        value="eps",
                        label="Budget as",
                    )
                    delta = Number(value=1e-5, label="delta", minimum=0)
                lo, hi = actions.SLIDER_RANGE["eps"]
                with gr.Row(equal_height=True):
                    slider = Slider(
                        minimum=lo,
                        maximum=hi,
                        value=actions.DEFAULT_SLIDER,
                        step=0.01,
                        label=slider_label("eps"),
                        elem_id="budget-slider",
                        scale=4,
                    )
                    # the budget itself (the slider is log-scale): typing 8 means eps 8
                    budget_box = Number(
                        value=actions.box_value(actions.DEFAULT_SLIDER, "eps", 1e-5),
                        label=h.box_label("eps"),
                        minimum=0,
                        elem_id="budget-value",
                        scale=1,
                        min_width=110,
                    )
                readout = gr.Markdown(
                    actions.readout(actions.DEFAULT_SLIDER, "eps", 1e-5), elem_id="budget-readout"
                )
                # risk first: the margin over guessing the verdicts and the search allow
                tolerance = Number(
                    value=10,
                    minimum=0.5,
                    maximum=50,
                    label="How much better than guessing may an attacker do and your image "
                    "still count as protected? (percentage points)",
                    elem_id="tolerance",
                )
                run_btn = gr.Button("Run audit", variant="primary", elem_id="run-audit")
                with gr.Accordion("DP-SGD calculator", open=False):
                    with gr.Row():
                        z = Number(value=1.0, label="noise multiplier z")
                        q = Number(value=0.01, label="sample rate q")
                    with gr.Row():
                        t_steps = Number(value=1000, label="steps T", precision=0)
                        c_delta = Number(value=1e-5, label="delta")
                    calc_btn = gr.Button("Compute")
                    calc_out = gr.Markdown()
                    calc_mu = gr.Number(visible=False)  # internal: None until computed
                    send_btn = gr.Button("Send to slider")
                with gr.Accordion("Advanced", open=False):
                    sampler = gr.Radio(
                        [("DDIM (deterministic)", "ddim"), ("DDPM (posterior samples)", "ddpm")],
                        value="ddim",
                        label="Reverse process",
                    )
                    steps = Slider(
                        1,
                        200,
                        value=DEFAULT_DDIM_STEPS,
                        step=1,
                        label="DDIM steps from t* (DDPM uses all)",
                    )
                    trials = Slider(
                        1,
                        MAX_TRIALS,
                        value=8,
                        step=1,
                        label="tries per budget (noise draws / posterior samples)",
                    )
                    seed = Number(
                        value=0,
                        precision=0,
                        label="seed (noise streams are keyed by seed and image)",
                    )
                    clip = Number(
                        value=0,
                        minimum=0,
                        label="clipping bound C of your training run, "
                        "in image units (L2 norm of an image in [0, 1] pixels); 0: "
                        "the median norm of the prior's reference images",
                    )
                with gr.Accordion("Priors available here", open=False):
                    gr.Markdown(h.priors_table)
            with gr.Column(scale=2):
                verdict = gr.Markdown(elem_id="verdict")
                # the results appear with the first audit (no empty image boxes before; on a
                # phone the verdict comes right after the controls); progress shows on the verdict
                with gr.Column(visible=False) as results:
                    with gr.Row():
                        out_orig = gr.Image(
                            label="Original", format="png", interactive=False, height=200
                        )
                        out_priv = gr.Image(
                            label="Released (try 1)",
                            format="png",
                            interactive=False,
                            height=200,
                        )
                        out_spread = gr.Image(
                            label="Spread of the tries",
                            format="png",
                            interactive=False,
                            height=200,
                        )
                    gr.Markdown(
                        "_Released_: what the attacker receives at this budget (try 1). "
                        "_Spread_: bright where the tries disagree, that is where the attacker "
                        "guesses."
                    )
                    out_recon = gr.Image(
                        label="Reconstructions, one per try",
                        format="png",
                        height=200,
                        interactive=False,
                        elem_id="reconstructions",
                    )
                    metrics = gr.Markdown()
                    verdicts_json = gr.JSON(label="Verdicts (as in verdicts.json)", visible=False)
                    with gr.Accordion("Compare chosen budgets", open=False):
                        pinned = gr.CheckboxGroup(
                            choices=actions.PIN_CHOICES,
                            value=[],
                            label=f"Budgets to compare (at most {actions.MAX_PINNED})",
                        )
                        with gr.Row():
                            pin_btn = gr.Button("Pin the slider's budget")
                            compare_btn = gr.Button("Compare")
                        compare_img = gr.Image(
                            label="Pinned budgets side by side", format="png", interactive=False
                        )
                        compare_table = gr.Markdown()
                    with gr.Row():
                        level = h.level_choices(DEFAULT_PRIOR, label="Protection to keep")
                        solve_btn = gr.Button("Find the largest safe budget", elem_id="find-budget")
                    solve_md = gr.Markdown(elem_id="safe-budget")
                    solve_img = gr.Image(
                        label="The largest safe budget (top row) and the "
                        "first budget searched above it (bottom row)",
                        format="png",
                        interactive=False,
                        visible=False,
                        elem_id="safe-budget-image",
                    )
                    sim_plot = gr.Plot(label="Similarity against the budget")
                    bound_plot = gr.Plot(label="Theoretical bounds")
                    budget_plot = gr.Plot(label="What eps means for this image")
                    budget_table = gr.Markdown(elem_id="budget-numbers")
                    ladder = gr.Image(
                        label="Budget ladder: from strong protection (top) to useless (bottom)",
                        format="png",
                        interactive=False,
                    )
                    report_btn = gr.Button("Download report (HTML)", elem_id="download-report")
                    report_file = gr.DownloadButton(
                        "report", visible="hidden", elem_id="report-file"
                    )

    with gr.Tab("Data set"):
        gr.Markdown(DATASET_INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                # a button whose text is its name (Gradio's drop area is labelled otherwise)
                ds_files = gr.State([])
                ds_upload = gr.UploadButton(
                    f"Choose images (at most {MAX_DATASET})",
                    file_count="multiple",
                    file_types=["image"],
                    elem_id="dataset-files",
                )
                ds_chosen = gr.Markdown("No images chosen yet.")
                ds_btn = gr.Button("Audit the data set", variant="primary", elem_id="run-dataset")
            with gr.Column(scale=2):
                ds_summary = gr.Markdown(elem_id="dataset-summary")
                ds_plot = gr.Plot(
                    label="Share of the images recognisable or partly recognisable, by budget",
                    visible=False,
                )
                ds_report = gr.DownloadButton(
                    "Download the data set's report (HTML)", visible=False, elem_id="dataset-report"
                )

    view_outputs = [
        out_orig,
        out_priv,
        out_recon,
        out_spread,
        verdict,
        metrics,
        sim_plot,
        bound_plot,
        verdicts_json,
        budget_plot,
        budget_table,
    ]
    # the budget in words and in the box, said by the events that choose it (the audit and
    # a slider move, at once), never by the exact budget computed after a move
    budget_outputs = [readout, budget_box]
    # Every handler that runs the model is in one concurrency group of MODEL_CONCURRENCY
    # (one model run at a time on this server, whoever asks and through whichever event).
    model = dict(concurrency_id="model", concurrency_limit=MODEL_CONCURRENCY)
    alt = dict(
        fn=h.alt_texts,
        inputs=[slider, mode, delta, session],
        outputs=[out_orig, out_priv, out_recon, out_spread, ladder, results],
        queue=False,
        api_visibility="private",
        show_progress="hidden",
    )
    # nothing of an earlier image stays on the page: its search answer and comparison go as
    # soon as another image arrives or an audit starts
    stale = [solve_md, solve_img, compare_img, compare_table]
    image.change(h.clear_answers, None, stale, queue=False, api_visibility="private")
    run_btn.click(h.clear_answers, None, stale, queue=False, api_visibility="private")
    run_btn.click(
        h.run,
        [
            image,
            prior,
            mode,
            delta,
            slider,
            sampler,
            steps,
            trials,
            seed,
            session,
            clip,
            tolerance_state,
        ],
        view_outputs + budget_outputs + [ladder, session],
        api_name="audit",
        show_progress_on=[verdict],
        **model,
    ).then(**alt)
    # a slider move only reads the ladder: it skips the queue (answered at once, in parallel
    # for all users); computing an exact budget goes through the queue
    slider.change(
        h.move,
        [slider, mode, delta, session],
        view_outputs + budget_outputs,
        api_name="budget",
        trigger_mode="always_last",
        queue=False,
        show_progress="hidden",
    ).then(
        h.exact,
        [slider, mode, delta, session],
        view_outputs + [session],
        api_name="exact_budget",
        trigger_mode="always_last",
        **model,
    ).then(**alt)
    mode.change(
        h.switch_mode, [mode, slider, delta], [slider, budget_box], api_visibility="private"
    )
    # the box beside the slider: typed budgets move the slider, a move updates the box
    for typed in (budget_box.submit, budget_box.blur):
        typed(
            h.typed_budget,
            [budget_box, mode],
            [slider],
            api_visibility="private",
            show_progress="hidden",
        )
    delta.change(
        h.readout_text, [slider, mode, delta, session], [readout], api_visibility="private"
    )
    calc_btn.click(h.calculator, [z, q, t_steps, c_delta], [calc_out, calc_mu], api_name="dpsgd")
    send_btn.click(h.send, [calc_mu, mode, delta], [slider], api_visibility="private")
    report_btn.click(
        h.report, [slider, mode, delta, session], [report_file], api_name="report"
    ).then(None, None, None, js=CLICK_REPORT, api_visibility="private")
    pin_btn.click(h.pin, [pinned, slider, mode, delta], [pinned], api_visibility="private")
    compare_btn.click(
        h.compare,
        [pinned, delta, session],
        [compare_img, compare_table, session],
        api_name="compare",
        **model,
    )
    # on ZeroGPU, whose quota the long actions need is said before they ask for the GPU
    solve_btn.click(
        h.announce_solve,
        [level, mode, delta, session, tolerance_state],
        None,
        queue=False,
        api_visibility="private",
    ).success(
        h.find_budget,
        [level, mode, delta, session, tolerance_state],
        [solve_md, solve_img, slider, session],
        api_name="find_budget",
        **model,
    )
    ds_upload.upload(h.choose_files, [ds_upload], [ds_files, ds_chosen], api_visibility="private")
    # the tab's files live in session state, which the API cannot send: for scripts, the
    # command line's batch audit does the same
    ds_btn.click(
        h.announce_dataset,
        [ds_files, prior, delta, steps, trials, seed, clip, tolerance_state],
        None,
        queue=False,
        api_visibility="private",
    ).success(
        h.dataset,
        [ds_files, prior, delta, steps, trials, seed, clip, tolerance_state],
        [ds_summary, ds_plot, ds_report],
        api_visibility="private",
        **model,
    )
    # the priors' states (a Hub prior becomes available when the network returns)
    demo.load(h.prior_selector, None, [prior], queue=False, api_visibility="private")
    # the selector shows each prior's preparation ("preparing (n%)") until all are settled
    timer = gr.Timer(5)
    timer.tick(
        h.refresh_priors,
        None,
        [prior, timer],
        queue=False,
        api_visibility="private",
        show_progress="hidden",
    )
    # the tries follow the prior (8 up to 64 pixels, 4 above)
    prior.change(
        h.default_trials_for, [prior], [trials, level], queue=False, api_visibility="private"
    )
    tolerance.change(
        h.keep_tolerance, tolerance, tolerance_state, queue=False, api_visibility="private"
    )
    demo.unload(h.cleanup)


def launch(**overrides):
    """Start the server with the privacy settings; tests pass prevent_thread_lock etc.
    Address and port are Gradio's: GRADIO_SERVER_NAME and GRADIO_SERVER_PORT (a Hugging Face
    Space sets both), else 127.0.0.1 and the first free port from 7860."""
    check_launch_environment()
    kwargs = dict(
        max_file_size=MAX_UPLOAD,
        run_history=False,
        footer_links=["api"],
        state_session_capacity=MAX_SESSIONS,
        allowed_paths=[],
        theme=THEME,
        css=CSS,
    )
    kwargs.update(overrides)
    # no request builds a reference set: the embedded prior is prepared now (seconds), the
    # other offered priors in a background thread (on ZeroGPU, CUDA may only be touched
    # inside spaces.GPU functions: preparation then runs on the CPU)
    h.start_preparing()
    return demo.queue(max_size=QUEUE_SIZE).launch(**kwargs)


if __name__ == "__main__":
    launch()
