"""Failed logins are limited per account (per tenant) and per client address, in the shared
cache; the lock-out is a 429 page saying how long to wait, is logged, and a cache outage does not
stop anyone from logging in."""

from __future__ import annotations

import json
import logging

import pytest
from django_tenants.utils import schema_context

from factory_portal.accounts import lockout
from factory_portal.accounts.services import user_create
from factory_portal.client import client_address
from factory_portal.observability.logging import JsonFormatter
from tests.support import OPERATOR_EMAIL, PASSWORD, host_client

pytestmark = pytest.mark.django_db

LIMIT = 3
LOCKED_OUT = "Too many failed sign-in attempts. Try again in 15 minutes."


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def _login(host: str, email: str, password: str, address: str = "203.0.113.7", **headers: str):
    return host_client(host).post(
        "/login/", {"username": email, "password": password}, REMOTE_ADDR=address, **headers
    )


def _assert_locked_out(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 429
    assert LOCKED_OUT in response.content.decode()
    assert response["Retry-After"] == "900"
    assert "_auth_user_id" not in response.wsgi_request.session


def test_an_account_is_locked_after_the_limit_whatever_the_address(alpha):
    for n in range(LIMIT - 1):
        assert _login(alpha.host, alpha.admin_email, "wrong", f"198.51.100.{n}").status_code == 200
    # The failure that reaches the limit already answers with the lock-out.
    _assert_locked_out(_login(alpha.host, alpha.admin_email, "wrong", "198.51.100.50"))
    # The right password from a new address is refused too, for as long as the lock-out lasts.
    _assert_locked_out(_login(alpha.host, alpha.admin_email, PASSWORD, "198.51.100.99"))
    # Case and spaces do not make another account.
    _assert_locked_out(_login(alpha.host, " Admin@Alpha.TEST ", PASSWORD, "198.51.100.98"))


def test_an_address_is_locked_after_the_limit_across_accounts_and_hosts(alpha, beta):
    _login(alpha.host, "nobody@alpha.test", "guess")
    _login(beta.host, "someone@beta.test", "guess")
    _assert_locked_out(_login(alpha.host, "another@alpha.test", "guess"))
    _assert_locked_out(_login(beta.host, beta.admin_email, PASSWORD))
    # Another address logs in to the same account.
    assert _login(beta.host, beta.admin_email, PASSWORD, "192.0.2.10").status_code == 302


def test_failures_on_one_tenant_do_not_lock_the_same_email_on_another(alpha, beta):
    email = "shared@example.test"
    for tenant in (alpha, beta):
        with schema_context(tenant.schema):
            user_create(email=email, role="member", password=PASSWORD)
    for n in range(LIMIT):
        _login(alpha.host, email, "wrong", f"198.51.100.{n}")
    _assert_locked_out(_login(alpha.host, email, PASSWORD, "192.0.2.10"))
    assert _login(beta.host, email, PASSWORD, "192.0.2.11").status_code == 302


def test_the_operator_login_is_limited_too(alpha, public_host):
    for n in range(LIMIT):
        _login(public_host, OPERATOR_EMAIL, "wrong", f"198.51.100.{n}")
    _assert_locked_out(_login(public_host, OPERATOR_EMAIL, PASSWORD, "192.0.2.10"))
    # The operator's lock-out is not a tenant's: an account of the same name there is unaffected.
    with schema_context(alpha.schema):
        user_create(email=OPERATOR_EMAIL, role="member", password=PASSWORD)
    assert _login(alpha.host, OPERATOR_EMAIL, PASSWORD, "192.0.2.11").status_code == 302


def test_a_successful_login_clears_the_account_but_not_the_address(alpha):
    for _round in range(3):  # without the reset the account would be locked on the 2nd round
        for n in range(LIMIT - 1):
            _login(alpha.host, alpha.admin_email, "wrong", f"198.51.100.{_round * 10 + n}")
        assert _login(alpha.host, alpha.admin_email, PASSWORD, "192.0.2.1").status_code == 302

    # An address guessing others' passwords cannot reset its count by logging in to its own.
    address = "192.0.2.77"
    for n in range(LIMIT - 1):
        _login(alpha.host, f"victim{n}@alpha.test", "guess", address)
    assert _login(alpha.host, alpha.admin_email, PASSWORD, address).status_code == 302
    _assert_locked_out(_login(alpha.host, "victim9@alpha.test", "guess", address))


def test_each_lock_out_is_logged_as_a_warning_line(alpha, caplog):
    caplog.set_level(logging.INFO)
    for n in range(LIMIT):
        _login(alpha.host, alpha.admin_email, "wrong", f"198.51.100.{n}")
    lockouts = [r for r in caplog.records if "Locking out" in r.getMessage()]
    assert len(lockouts) == 1
    line = json.loads(JsonFormatter().format(lockouts[0]))
    assert line["level"] == "WARNING"
    assert line["logger"].startswith("axes")
    assert f"account {alpha.schema}:{alpha.admin_email} from 198.51.100.2" in line["message"]
    assert "wrong" not in line["message"]


def test_logins_work_without_limits_when_the_cache_is_down(alpha, settings, caplog, monkeypatch):
    monkeypatch.setattr(lockout, "_cache_warned_at", -lockout.CACHE_WARNING_EVERY_S)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    for _ in range(LIMIT + 1):
        response = _login(alpha.host, alpha.admin_email, "wrong")
        assert response.status_code == 200
        assert "did not match" in response.content.decode()
    assert _login(alpha.host, alpha.admin_email, PASSWORD).status_code == 302
    warnings = [r for r in caplog.records if "login limits not applied" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_log_lines_show_what_was_typed_as_the_email_only_when_it_is_one(rf):
    request = rf.post("/login/")
    named = lockout.client_description("alpha:dev@alpha.test", "192.0.2.1", "", "/login/", request)
    assert named == "account alpha:dev@alpha.test from 192.0.2.1 on /login/"
    typo = lockout.client_description("alpha:hunter2 secret", "192.0.2.1", "", "/login/", request)
    assert "hunter2" not in typo and "alpha:[not an e-mail address]" in typo


@pytest.mark.parametrize(
    ("behind_proxy", "forwarded", "expected"),
    [
        (False, "10.9.9.9", "203.0.113.7"),  # no proxy: the header is the client's own words
        (True, "10.9.9.9, 198.51.100.4", "198.51.100.4"),  # the entry our proxy appended
        (True, "not-an-address", "203.0.113.7"),
    ],
)
def test_the_client_address_trusts_forwarded_for_only_behind_the_proxy(
    rf, settings, behind_proxy, forwarded, expected
):
    settings.PORTAL_BEHIND_TLS_PROXY = behind_proxy
    request = rf.post("/login/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_a_forged_forwarded_for_does_not_escape_the_address_limit(alpha):
    for n in range(LIMIT - 1):
        _login(alpha.host, f"x{n}@alpha.test", "guess", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    _assert_locked_out(_login(alpha.host, "y@alpha.test", "guess", HTTP_X_FORWARDED_FOR="10.1.1.1"))
