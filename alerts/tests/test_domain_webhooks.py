"""Which addresses a webhook may connect to: every non-public form is refused, including the
IPv6 forms that lead to a private IPv4 address, whatever Python's own ``is_global`` says."""

from __future__ import annotations

import pytest

from alerts.domain.webhooks import address_public, refused_addresses

PUBLIC = [
    ("93.184.215.14", "public IPv4"),
    ("8.8.8.8", "public IPv4"),
    ("1.1.1.1", "public IPv4"),
    ("2606:4700:4700::1111", "public IPv6"),
    ("2001:4860:4860::8888", "public IPv6"),
    ("64:ff9b::808:808", "NAT64 of a public IPv4"),
    ("2002:808:808::1", "6to4 of a public IPv4"),
]

NOT_PUBLIC = [
    # IPv4
    ("0.0.0.0", "unspecified"),  # noqa: S104
    ("0.1.2.3", "this network"),
    ("10.0.0.5", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link-local (cloud metadata)"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("192.0.0.9", "IETF protocol assignments"),
    ("192.0.2.10", "documentation TEST-NET-1"),
    ("198.51.100.7", "documentation TEST-NET-2"),
    ("203.0.113.9", "documentation TEST-NET-3"),
    ("192.88.99.1", "6to4 relay anycast"),
    ("198.18.0.1", "benchmarking"),
    ("224.0.0.1", "multicast"),
    ("233.252.0.1", "multicast (documentation)"),
    ("239.255.255.250", "multicast (SSDP)"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    # IPv6
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::127.0.0.1", "IPv4-compatible (deprecated)"),
    ("::8.8.8.8", "IPv4-compatible (deprecated), even of a public IPv4"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("::ffff:169.254.169.254", "IPv4-mapped metadata"),
    ("::ffff:8.8.8.8", "IPv4-mapped, even of a public IPv4"),
    ("64:ff9b::7f00:1", "NAT64 of loopback"),
    ("64:ff9b::a00:5", "NAT64 of a private address"),
    ("64:ff9b::a9fe:a9fe", "NAT64 of the metadata address"),
    ("64:ff9b::6440:1", "NAT64 of carrier-grade NAT"),
    ("64:ff9b::c000:20a", "NAT64 of documentation"),
    ("64:ff9b:1::808:808", "local-use NAT64"),
    ("64:ff9b:1:ffff::1", "local-use NAT64"),
    ("2002:7f00:1::1", "6to4 of loopback"),
    ("2002:a00:5::1", "6to4 of a private address"),
    ("2002:a9fe:a9fe::1", "6to4 of the metadata address"),
    ("2002:c0a8:101::1", "6to4 of a private address"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo (client 10.0.0.1)"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo (client 127.0.0.1)"),
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "Teredo, even of a public client (8.8.8.8)"),
    ("2001:db8::1", "documentation"),
    ("2001:db8:ffff::1", "documentation"),
    ("3fff::1", "documentation (RFC 9637)"),
    ("100::1", "discard-only"),
    ("2001:2::1", "benchmarking"),
    ("5f00::1", "SRv6 SIDs"),
    ("fc00::1", "unique local"),
    ("fd12:3456:789a::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fe80::1%1", "link-local with a scope"),
    ("2606:4700::1%1", "any address with a scope"),
    ("fec0::1", "site-local"),
    ("feff::1", "site-local"),
    ("ff02::1", "multicast, link-local scope"),
    ("ff05::2", "multicast, site scope"),
    ("ff0e::1", "multicast, global scope"),
]


@pytest.mark.parametrize(("address", "why"), PUBLIC)
def test_public_addresses_are_allowed(address, why):
    assert address_public(address), why


@pytest.mark.parametrize(("address", "why"), NOT_PUBLIC)
def test_every_non_public_form_is_refused(address, why):
    assert not address_public(address), why


def test_refused_addresses_names_each_non_public_one_of_a_host():
    resolved = ["93.184.215.14", "10.0.0.5", "2606:4700:4700::1111", "::ffff:127.0.0.1"]
    assert refused_addresses(resolved) == ["10.0.0.5", "::ffff:127.0.0.1"]
    assert refused_addresses(["93.184.215.14", "2606:4700:4700::1111"]) == []


def test_text_that_is_not_an_address_is_an_error():
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        address_public("localhost")
