"""The one interface the search uses to sample from the prover model.

Every backend takes a batch of prompts and a sample count and returns completions with token
counts. Backends are shared: the 32 concurrent RMaxTS jobs of a search, and many searches in the
service, call `generate` on one object at once, and each backend is responsible for batching
those calls together (continuous batching in vLLM, request fan-out for an HTTP server, a
collecting batcher for transformers) so that no caller waits for another caller's batch.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import cast


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a chat prompt (`system`, `user` or `assistant`)."""

    role: str
    content: str

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


# A prompt is raw text the model continues, or a conversation (chat provers: DeepSeek-Prover-V2,
# Goedel-Prover-V2, Kimina-Prover) that the backend renders with the model's chat template, or
# sends to a server's chat endpoint, and that the model answers as the assistant.
Chat = tuple[ChatMessage, ...]
Prompt = str | Chat


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot start here; the message says what to install or set."""


class GenerationError(RuntimeError):
    """A generation request failed for good (after retries); the message names the cause."""


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings; the defaults are DeepSeek-Prover-V1.5's (temperature 1, top-p 0.95)."""

    temperature: float = 1.0
    top_p: float = 0.95
    max_tokens: int = 2048
    # With a seed, the n samples of one prompt are a deterministic function of (prompt, seed, n)
    # on deterministic backends; different prompts in one call get the same seed.
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # Ask for each completion's cumulative log-probability (`Completion.logprob`): best-first
    # tactic search ranks states by it. vLLM and OpenAI-compatible servers return it.
    logprobs: bool = False

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: int  # generated tokens
    prompt_tokens: int = 0
    finish_reason: str = "stop"  # "stop" (end of sequence or a stop string) or "length"
    logprob: float | None = None  # sum of the sampled tokens' log-probabilities, if asked


@dataclass
class GeneratorStats:
    requests: int = 0
    prompts: int = 0
    completions: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class Generator(abc.ABC):
    """A started backend. Use `async with` (or `start`/`close`) around its lifetime."""

    name: str = "generator"

    def __init__(self) -> None:
        self.stats = GeneratorStats()

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Load the model / open connections. Raises `BackendUnavailable` with a fix."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model / connections; idempotent."""

    # Whether `_generate` takes `Chat` prompts itself (a server's chat endpoint); otherwise chats
    # are rendered to text with `render_chat` first.
    native_chat: bool = False

    @abc.abstractmethod
    async def _generate(
        self, prompts: Sequence[str], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        """Backend-specific work: one list of `n` completions per prompt, in order (`Chat`
        prompts too when the backend declares `native_chat`)."""

    def render_chat(self, chat: Chat) -> str:
        """A conversation as the text the model continues: its chat template, ending with the
        assistant's turn opened. Backends with a tokenizer implement it."""
        raise GenerationError(f"the {self.name} backend cannot send chat prompts")

    async def generate(
        self, prompts: Sequence[Prompt], n: int = 1, params: SamplingParams | None = None
    ) -> list[list[Completion]]:
        """Sample `n` completions for each prompt; safe to call from many tasks at once."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if isinstance(prompts, str):
            raise TypeError("generate takes a sequence of prompts, not one string")
        if not prompts:
            return []
        if self.native_chat:
            texts = cast(list[str], list(prompts))  # the backend takes both kinds
        else:
            texts = [p if isinstance(p, str) else self.render_chat(p) for p in prompts]
        result = await self._generate(texts, n, params or SamplingParams())
        stats = self.stats
        stats.requests += 1
        stats.prompts += len(prompts)
        for row in result:
            for c in row:
                stats.completions += 1
                stats.prompt_tokens += c.prompt_tokens
                stats.generated_tokens += c.tokens
        return result

    async def __aenter__(self) -> Generator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
