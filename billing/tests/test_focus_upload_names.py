"""The operator's FOCUS upload keeps the client's file name in the import record only: a name of
255 characters but more than 255 bytes (the file system's limit) imports like any other."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing.operator.models import FocusImport
from billing.tests.focus_bills import FOCUS_HEADER, FOCUS_ROWS
from tests.support import OPERATOR_EMAIL, logged_in_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["\U0001f4b8" * 120 + ".csv", "../../etc/passwd", "a\x00b.csv"])
def test_upload_with_a_hostile_file_name(public_host, name):
    operator = logged_in_client(public_host, OPERATOR_EMAIL)
    upload = SimpleUploadedFile(name, (FOCUS_HEADER + FOCUS_ROWS).encode(), "text/csv")
    assert operator.post("/pools/upload", {"file": upload}).status_code == 302
    record = FocusImport.objects.get()
    assert record.rows == 3
    assert "/" not in record.filename and "\x00" not in record.filename
    assert record.filename.endswith(name.rsplit("/", 1)[-1].replace("\x00", "")[-20:])
