"""The sdxl-random benchmark by section (entry point: :mod:`bench.bench_sdxl_random`)."""
