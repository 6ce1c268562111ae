"""Prover-model backends behind one async interface (`Generator`), and the factory that picks one
from the configuration."""

from prover.model.base import (
    BackendUnavailable,
    Chat,
    ChatMessage,
    Completion,
    GenerationError,
    Generator,
    Prompt,
    SamplingParams,
)
from prover.model.factory import create_generator

__all__ = [
    "BackendUnavailable",
    "Chat",
    "ChatMessage",
    "Completion",
    "GenerationError",
    "Generator",
    "Prompt",
    "SamplingParams",
    "create_generator",
]
