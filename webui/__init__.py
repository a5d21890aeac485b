"""The Gradio web app's parts outside the layout (app.py lays out and wires them):
config (the deployment's settings, from the environment), texts and components (what the
page says, and its input components), files (uploads and result images on disk),
handlers (the events: engine errors become messages on the page in one place).

The engine (audit_engine) never imports gradio; this package is where the two meet."""
