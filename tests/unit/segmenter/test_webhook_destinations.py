"""Where webhooks may go: public addresses only, unless the operator allows a network (registration and delivery:
tests/integration/segmenter/test_webhook_destinations.py)."""

import ipaddress

import pytest

from segmenter.webhooks import network

REFUSED = [
    "127.0.0.1",
    "127.9.9.9",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.100.100.200",
    "192.0.0.170",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",
    "ff02::1",
    "ff0e::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "2002:7f00:1::1",
    "2002:a9fe:a9fe::1",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "2001:db8::1",
    "100::1",
]


PUBLIC = [
    "93.184.215.14",
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82a::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address):
    assert network.is_refused(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_not(address):
    assert not network.is_refused(address)


def test_an_allowed_network_opens_that_network_only():
    allowed = network.allowed_networks("127.0.0.0/8, ::1")
    assert allowed == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert not network.is_refused("127.0.0.1", allowed)
    assert not network.is_refused("::ffff:127.0.0.1", allowed)
    assert not network.is_refused("::1", allowed)
    assert network.is_refused("10.0.0.1", allowed)
    assert network.is_refused("169.254.169.254", allowed)
    with pytest.raises(ValueError, match="WEBHOOK_ALLOW_NETWORKS"):
        network.allowed_networks("127.0.0.0/33")
