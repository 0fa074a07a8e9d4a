"""Sending queued notifications: webhook (Alertmanager's payload), Slack and e-mail, with retries.

Each delivery is tried up to ``attempts`` times with exponential backoff (tenacity), then recorded as
sent or failed with its attempts and last error. A delivery is sent at least once: one that was sent
but not yet recorded when the process died is sent again at the next start (the window is one
UPDATE). Errors are written in our own words: the text of an HTTP library's error carries the URL's
path, which for a webhook or Slack URL is the secret.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from tenacity import RetryError, Retrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from exporters.store.alerts import AlertStore, Delivery
from service.alerts import messages
from service.alerts.evaluator import Clock, utc_now
from service.alerts.rules import mask_url

_logger = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A notification was not accepted; the message never holds a secret."""


class TargetGone(DeliveryError):
    """The rule or its target was removed or changed: trying again would not help."""


@dataclass(frozen=True)
class DeliverySettings:
    attempts: int = 3
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 30.0
    timeout_seconds: float = 10.0
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "pipetrace@localhost"
    smtp_starttls: bool = False


class Deliverer:
    def __init__(
        self,
        alerts: AlertStore,
        settings: DeliverySettings,
        base_url: Any,
        clock: Clock = utc_now,
    ) -> None:
        self.alerts = alerts
        self.settings = settings
        self.base_url = base_url
        self.clock = clock
        self._session = requests.Session()
        # One sender at a time: the loop and a "send test" request must not both pick a delivery.
        self._lock = threading.Lock()

    def deliver_pending(self) -> int:
        """Send every pending delivery; return how many were sent."""
        with self._lock:
            return sum(self._deliver(delivery) == "sent" for delivery in self.alerts.pending_deliveries())

    def deliver(self, delivery_id: str) -> None:
        with self._lock:
            for delivery in self.alerts.pending_deliveries():
                if delivery.id == delivery_id:
                    self._deliver(delivery)

    def deliver_rule(self, rule_id: str, last: Sequence[str] = ()) -> None:
        """Send every pending delivery of one rule, oldest first and the ids ``last`` after the others:
        before the rule is edited or deleted, a "firing" an evaluation queued must reach the target it
        was meant for ahead of the "resolved" the change queues (sent after it, or to an edited
        target, it would leave a receiver showing an alert that no longer exists)."""
        with self._lock:
            pending = [d for d in self.alerts.pending_deliveries() if d.rule_id == rule_id]
            for delivery in sorted(pending, key=lambda d: d.id in last):  # sorted() keeps the order
                self._deliver(delivery)

    def _deliver(self, delivery: Delivery) -> str:
        attempts = delivery.attempts
        status, error = "failed", None
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(self.settings.attempts),
                retry=retry_if_not_exception_type(TargetGone),
                wait=wait_exponential(
                    multiplier=self.settings.backoff_seconds, max=self.settings.backoff_max_seconds
                ),
            ):
                with attempt:
                    attempts += 1
                    self._send(delivery)
            status = "sent"
        except RetryError as exc:
            error = str(exc.last_attempt.exception())
        except TargetGone as exc:
            error = str(exc)
        if error is not None:
            _logger.warning("alert notification %s (%s, rule %s) failed after %d attempts: %s",
                            delivery.id, delivery.channel, delivery.rule_id, attempts, error)  # fmt: skip
        self.alerts.finish_delivery(delivery.id, status, attempts, error, self.clock())
        return status

    def _send(self, delivery: Delivery) -> None:
        rule = self.alerts.rule(delivery.rule_id)
        if rule is None or delivery.target >= len(rule.definition["notify"]):
            raise TargetGone("the rule or this target of it no longer exists")
        target = rule.definition["notify"][delivery.target]
        if target["type"] != delivery.channel:
            raise TargetGone("the rule's target changed since the notification was queued")
        if delivery.channel == "email":
            self._email(delivery, target["to"])
            return
        secrets = self.alerts.rule_secrets(delivery.rule_id)
        url = secrets[delivery.target] if delivery.target < len(secrets) else None
        if url is None:
            raise TargetGone("the target's URL is missing")
        if delivery.channel == "webhook":
            body = messages.alertmanager_payload(delivery.message, self.base_url())
        else:
            body = messages.slack_payload(delivery.message, delivery.event)
        self._post(url, body)

    def _post(self, url: str, body: dict[str, Any]) -> None:
        try:
            response = self._session.post(url, json=body, timeout=self.settings.timeout_seconds)
        except requests.RequestException as exc:
            raise DeliveryError(f"{type(exc).__name__}: {mask_url(url)} could not be reached") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"{mask_url(url)} answered HTTP {response.status_code}")

    def _email(self, delivery: Delivery, to: list[str]) -> None:
        settings = self.settings
        if not settings.smtp_host:
            raise DeliveryError("no SMTP server is set (PIPETRACE_SMTP_HOST)")
        email = messages.email_message(delivery.message, delivery.event, settings.smtp_sender, to)
        try:
            with smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds
            ) as smtp:
                if settings.smtp_starttls:
                    smtp.starttls()
                if settings.smtp_user and settings.smtp_password:
                    smtp.login(settings.smtp_user, settings.smtp_password)
                smtp.send_message(email)
        except (smtplib.SMTPException, OSError) as exc:
            where = f"{settings.smtp_host}:{settings.smtp_port}"
            raise DeliveryError(f"SMTP {where}: {type(exc).__name__}: {exc}") from None
