"""exoflow's checksum job: everything only it needs (kernels, reducer, summary, plots, after-steps)."""
