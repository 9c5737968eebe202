"""One package per job: its kernels, reducer, summary type, plots and after-steps. The engine imports nothing from here."""
