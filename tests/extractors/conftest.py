"""Shared fixtures: each real model is loaded once for the whole package of tests.

The network is closed for these tests (anything but loopback and Unix sockets fails), so a
model that tried to download anything would fail here. Built models (the distilled static
model, the assembled mpnet) live in the machine's model cache (``OFFSHOOT_MODEL_CACHE`` or
``~/.cache/offshoot/models``): the first run on a machine builds them (about 20-70 s), later
runs reuse them; tests of building itself use temporary directories.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libs.extractors import ConfiguredExtractor, ModelUnavailableError, get_extractor
from libs.extractors.mpnet_assembly import find_parts

FIXTURE = Path(__file__).parent / "fixtures" / "reference_embeddings.json"


def _is_local(address: Any) -> bool:
    if isinstance(address, str | bytes):  # a Unix socket path
        return True
    host = str(address[0])
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@pytest.fixture(scope="package", autouse=True)
def no_network() -> Iterator[None]:
    """Fail any connection that would leave the machine."""
    connect = socket.socket.connect
    connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _is_local(address):
            raise OSError(f"network access attempted by an extractor test: {address!r}")
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_local(address):
            raise OSError(f"network access attempted by an extractor test: {address!r}")
        return connect_ex(self, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", guarded_connect)
        patch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
        yield


@pytest.fixture(scope="package")
def reference() -> dict[str, Any]:
    """Texts and sentence-transformers vectors written by ``make_fixtures.py``."""
    models: dict[str, Any] = json.loads(FIXTURE.read_text())["models"]
    return models


@pytest.fixture(scope="package")
def minilm(no_network: None) -> ConfiguredExtractor:
    extractor = get_extractor("minilm", "v1")
    extractor.embed(["warm up: loads the model"])
    return extractor


@pytest.fixture(scope="package")
def static_model(no_network: None) -> ConfiguredExtractor:
    extractor = get_extractor("minilm-static", "v1")
    extractor.embed(["warm up: distils on the first run on this machine"])
    return extractor


@pytest.fixture(scope="package")
def mpnet(no_network: None) -> ConfiguredExtractor:
    try:
        find_parts()
    except ModelUnavailableError as missing:
        pytest.skip(str(missing))
    return get_extractor("mpnet", "v1")


@pytest.fixture(scope="package")
def bm25() -> ConfiguredExtractor:
    return get_extractor("bm25", "v1")
