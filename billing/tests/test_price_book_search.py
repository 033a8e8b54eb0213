"""The operator's price book search takes any text, NUL included, without a 500."""

from __future__ import annotations

import pytest

from tests.support import OPERATOR_EMAIL, logged_in_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("param", ["q", "provider"])
def test_price_book_search_with_a_nul_character(public_host, param):
    operator = logged_in_client(public_host, OPERATOR_EMAIL)
    page = operator.get("/price-book/", {param: "gpt\x00"})
    assert page.status_code == 200
    if param == "q":
        assert "gpt-4.1" in page.content.decode()  # NUL dropped: the search is "gpt"
