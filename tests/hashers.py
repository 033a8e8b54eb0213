"""The password hasher of the test run: PBKDF2-SHA256 as in production, with few iterations.

Production hashes with Django's default (1,000,000 iterations, about 0.85 s a password on the
2-core test machine); the suite creates and logs in users thousands of times, and that cost was
a large share of its wall time. The algorithm, the encoding (``pbkdf2_sha256$<iterations>$...``)
and the code path are the same, so a hash made here is checked by any process with the default
hashers (it reads the iteration count from the hash).
"""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1_000
