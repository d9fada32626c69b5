"""Reading state: status, monitor, progress, reports, graph export, costs."""
