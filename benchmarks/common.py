"""What several benchmark scripts share: the model mix of generated LLM calls and the shape of
a traced LLM call (an OpenTelemetry ``chat`` span). Imported by the scripts, never run."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

MODELS = [
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("openai", "gpt-4.1"),
    ("openai", "gpt-4.1-mini"),
    ("google", "gemini-2.5-flash"),
]

CHAT_ATTRIBUTES = {
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4.1-mini",
    "gen_ai.usage.input_tokens": 3000,
    "gen_ai.usage.output_tokens": 200,
}


def chat_span(tracer: Any) -> AbstractContextManager[Any]:
    """One traced LLM call (3,000 input and 200 output tokens of gpt-4.1-mini)."""
    return tracer.start_as_current_span("chat", attributes=CHAT_ATTRIBUTES)
