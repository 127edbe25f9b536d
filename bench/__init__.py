"""Benchmarks: speed and memory of training and panel generation (see docs/PERFORMANCE.md)."""
