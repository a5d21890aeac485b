"""What an audit writes: the HTML page skeleton every report shares (page), the audit's
grid, CSV, JSON and report (report), plotly figures (plots)."""
