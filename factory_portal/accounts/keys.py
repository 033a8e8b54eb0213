"""API key format, generation and verification (pure functions, no database).

A key reads ``fp_<prefix>_<secret>``: the prefix is shown in lists so people can tell keys apart;
only a SHA-256 digest of the whole key is stored. Keys carry 256 bits of randomness, so a fast
digest is safe here (a slow password hash protects low-entropy secrets, not random tokens).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

KEY_RE = re.compile(r"^fp_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class NewKey:
    prefix: str
    raw: str
    digest: str


def key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def key_generate() -> NewKey:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    raw = f"fp_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(prefix=prefix, raw=raw, digest=key_digest(raw))


def key_prefix(raw: str) -> str | None:
    """The prefix of a well-formed key, or None when ``raw`` cannot be one of ours."""
    match = KEY_RE.match(raw)
    return match.group(1) if match else None


def key_matches(raw: str, digest: str) -> bool:
    return hmac.compare_digest(key_digest(raw), digest)
