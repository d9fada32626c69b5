"""Running a bundle: doit compiler and bridge, step action, budgets, breakers, gates, slots."""
