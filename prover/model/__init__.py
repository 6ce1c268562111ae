"""Prover-model backends behind one async interface (`Generator`), and the factory that picks one
from the configuration."""

from prover.model.base import (
    BackendUnavailable,
    Completion,
    GenerationError,
    Generator,
    SamplingParams,
)
from prover.model.factory import create_generator

__all__ = [
    "BackendUnavailable",
    "Completion",
    "GenerationError",
    "Generator",
    "SamplingParams",
    "create_generator",
]
