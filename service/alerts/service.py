"""The alerts of one running service: its evaluator, its deliverer and the loop that runs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from exporters.store import TelemetryStore
from exporters.store.alert_queries import AlertQueries
from exporters.store.alerts import AlertStore, iso
from service.alerts.conditions import Counters
from service.alerts.delivery import Deliverer, DeliverySettings
from service.alerts.evaluator import Clock, Evaluator, utc_now
from service.periodic import Periodic
from service.settings import Settings

EXTENSION_KEY = "pipetrace.alerts"


@dataclass
class Alerts:
    store: AlertStore
    evaluator: Evaluator
    deliverer: Deliverer
    worker: Periodic | None = None
    last_run_at: str | None = None
    last_error: str | None = None

    def run_once(self) -> None:
        """One evaluation, then every pending notification (this one's and any a restart left). A
        failure (the store unavailable) is kept for /readyz and raised for the loop to log; the next
        interval tries again."""
        try:
            self.evaluator.evaluate_once()
            self.deliverer.deliver_pending()
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.last_run_at = iso(self.evaluator.clock())
        self.last_error = None

    def status(self) -> dict[str, Any]:
        """For /readyz: when the rules were last evaluated and what failed then, if anything."""
        return {"last_run_at": self.last_run_at, "error": self.last_error}


def delivery_settings(settings: Settings) -> DeliverySettings:
    return DeliverySettings(
        attempts=settings.alert_delivery_attempts,
        backoff_seconds=settings.alert_retry_seconds,
        timeout_seconds=settings.alert_timeout_seconds,
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_user=settings.smtp_user,
        smtp_password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        smtp_sender=settings.smtp_from,
        smtp_starttls=settings.smtp_starttls,
    )


def build_alerts(
    settings: Settings,
    store: TelemetryStore,
    counters: Counters,
    listen_url: Callable[[], str | None],
    clock: Clock = utc_now,
) -> Alerts:
    alert_store = AlertStore(store, settings.data_dir / "secrets")

    def base_url() -> str | None:
        return settings.public_url or listen_url()

    evaluator = Evaluator(alert_store, AlertQueries(store), counters, base_url, clock)
    deliverer = Deliverer(alert_store, delivery_settings(settings), base_url, clock)
    return Alerts(alert_store, evaluator, deliverer)


def install_alerts(app: Flask, alerts: Alerts, interval_seconds: float) -> None:
    """Keep ``alerts`` on the app and, unless the interval is 0, evaluate every interval."""
    app.extensions[EXTENSION_KEY] = alerts
    if interval_seconds > 0:
        # The first evaluation one interval after the start: by then the service listens and knows
        # its address, which the notifications' links use.
        alerts.worker = Periodic("alerts", interval_seconds, alerts.run_once, wait_first=True)
        alerts.worker.start()


def stop_alerts(app: Flask) -> None:
    alerts: Alerts | None = app.extensions.get(EXTENSION_KEY)
    if alerts is not None and alerts.worker is not None:
        alerts.worker.stop()


def alerts_of(app: Flask | None = None) -> Alerts:
    found: Alerts = (app or current_app).extensions[EXTENSION_KEY]
    return found
