"""Real per-request token counts (Azure LLM inference traces) for the demo's simulated calls."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
TRACE_FILES = {
    "code": DATA_DIR / "AzureLLMInferenceTrace_code.csv",
    "conv": DATA_DIR / "AzureLLMInferenceTrace_conv.csv",
}


@dataclass(frozen=True)
class TokenSample:
    input_tokens: int
    output_tokens: int


@cache
def trace_samples(trace: str) -> tuple[TokenSample, ...]:
    with TRACE_FILES[trace].open(newline="") as handle:
        return tuple(
            TokenSample(int(row["ContextTokens"]), int(row["GeneratedTokens"]))
            for row in csv.DictReader(handle)
        )


class TokenSampler:
    """Draws requests uniformly from a trace: ``sampler("code")``."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def __call__(self, trace: str) -> TokenSample:
        return self._rng.choice(trace_samples(trace))
