"""The suite's own guard: nothing may leave loopback."""
from __future__ import annotations

import os
import socket

import pytest
import requests


def test_non_loopback_connect_is_blocked() -> None:
    with pytest.raises(OSError, match="loopback"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(OSError, match="127.0.0.1"):
            sock.connect(("192.0.2.1", 443))


def test_name_resolution_of_real_salesforce_is_blocked() -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get("https://login.salesforce.com/services/oauth2/token", timeout=1)


def test_ca_bundle_variables_are_set() -> None:
    assert os.environ.get("REQUESTS_CA_BUNDLE")
    assert os.environ.get("SSL_CERT_FILE")
