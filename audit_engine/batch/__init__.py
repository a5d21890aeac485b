"""Many images: a folder audited or solved, resumable (run), each image's work (work), on
Ray when one machine is not enough (distributed), the summaries and reports (summary,
solve_report)."""
