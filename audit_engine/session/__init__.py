"""The dashboard's state, without gradio: the settings, the slider's mapping and one
image's budget ladder (ladder: Session), and one budget's view in words and pictures,
pinned budgets and the report (views). webui/ draws it."""
