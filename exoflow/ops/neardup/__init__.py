"""exoflow's neardup job: everything only it needs (MinHash kernel, LSH stages, reducer, plots)."""
