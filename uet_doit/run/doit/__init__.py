"""The doit bridge: bundles compiled to tasks, the step action and its runtime, doit's decisions."""
