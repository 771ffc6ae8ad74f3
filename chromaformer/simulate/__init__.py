"""Simulated data in the exact input formats, seeded: the built-in default of the demo,
the benchmarks and the large tests. Nothing in the library imports this package."""

from .chromoformer import npy_bytes, simulate_chromoformer
from .genome import simulate_genome, write_simulated
from .tracks import simulate_samples

__all__ = [
    "npy_bytes",
    "simulate_chromoformer",
    "simulate_genome",
    "simulate_samples",
    "write_simulated",
]
