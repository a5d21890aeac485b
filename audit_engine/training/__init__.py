"""Training priors: the embedded digit prior's data (``digits``)."""
