"""``local_setting`` applies a setting to the statements inside and then puts back what was in
force, an outer ``SET LOCAL`` included (a ``RESET`` would drop it), or, when a statement inside
failed, leaves that to the savepoint's rollback."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from factory_portal.pg import local_setting

pytestmark = pytest.mark.django_db


def _value(cursor) -> str:  # type: ignore[no-untyped-def]
    cursor.execute("SELECT current_setting('work_mem')")
    return str(cursor.fetchone()[0])


def test_the_outer_value_is_back_after_the_block_and_after_a_failure_inside():
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '5MB'")
        with local_setting(cursor, "work_mem", "7MB"):
            assert _value(cursor) == "7MB"
        assert _value(cursor) == "5MB"

        with (
            pytest.raises(DatabaseError),
            transaction.atomic(),
            local_setting(cursor, "work_mem", "9MB"),
        ):
            cursor.execute("SELECT 1 / 0")
        assert _value(cursor) == "5MB"
