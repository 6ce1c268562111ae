"""Chat prompts for in-process models: render a conversation with the tokenizer's template.

Chat provers (DeepSeek-Prover-V2, Goedel-Prover-V2, Kimina-Prover) were trained on their chat
template's exact text, so a conversation is rendered by the model's own tokenizer, never by a
format of ours. A model whose tokenizer has no template cannot be prompted the way such a profile
needs; that is found when the backend starts, not after the first batch of wasted samples.
"""

from __future__ import annotations

from typing import Any

from prover.config import Settings
from prover.model.base import BackendUnavailable, Chat, GenerationError


def needs_chat(settings: Settings) -> bool:
    """Whether the configured profile and prompt format send chat messages."""
    from prover.profiles import get_profile

    profile = get_profile(settings.model_profile)
    return profile.is_chat(profile.mode(settings.model_prompt))


def require_template(tokenizer: Any, settings: Settings) -> None:
    """Refuse to start a chat profile on a model without a chat template, in one line."""
    if needs_chat(settings) and not getattr(tokenizer, "chat_template", None):
        raise BackendUnavailable(
            f"PROVER_MODEL={settings.model!r} has no chat template (tokenizer_config.json "
            f"'chat_template'), and profile {settings.model_profile} prompts with chat "
            "messages: use the chat model the profile is for, or a raw-text profile "
            "(PROVER_MODEL_PROFILE=deepseek-v1.5)"
        )


def render(tokenizer: Any, chat: Chat) -> str:
    """The conversation as text ending with the assistant's turn opened.

    The template's leading BOS is dropped because both backends tokenize the text with special
    tokens added, which puts it back once (not twice).
    """
    try:
        text = str(tokenizer.apply_chat_template(
            [m.to_json() for m in chat], tokenize=False, add_generation_prompt=True))
    except Exception as exc:  # jinja errors, a template that rejects a role, no template
        raise GenerationError(f"the model's chat template failed on this conversation: "
                              f"{type(exc).__name__}: {exc}") from exc
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos):
        text = text[len(bos):]
    return text
