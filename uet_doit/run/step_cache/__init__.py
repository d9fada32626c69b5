"""The step cache in a run: keys (what a step's key is made of), lookup (keys where a run
stands) and extension (the StepExtension a run registers). What is stored, and where, is
cache/, below run: it knows nothing of a run."""
