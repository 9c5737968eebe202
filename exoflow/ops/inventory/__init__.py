"""exoflow's inventory job: everything only it needs (kernels, reducer, summary, plots, after-steps)."""
