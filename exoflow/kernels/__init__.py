"""Kernels: pure functions from a Batch to new columns. No I/O inside a kernel."""
