"""Fixtures the alert tests share: an injected clock and a real webhook receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alert_receivers import WebhookReceiver, webhook_receiver
from tests.service.alert_helpers import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as found:
        yield found
