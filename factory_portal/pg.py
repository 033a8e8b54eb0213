"""Small PostgreSQL helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def local_setting(cursor: Any, name: str, value: str) -> Iterator[None]:
    """The setting ``name`` at ``value`` for the statements run on ``cursor`` inside, then back
    to what it was (an outer ``SET LOCAL`` or a session value included; ``RESET`` would drop
    them). Local to the transaction (``set_config(…, true)``), so call it inside one: when a
    statement inside fails, the rollback of the transaction or savepoint puts it back."""
    cursor.execute("SELECT current_setting(%s)", [name])
    (previous,) = cursor.fetchone()
    cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
    yield
    cursor.execute("SELECT set_config(%s, %s, true)", [name, previous])
