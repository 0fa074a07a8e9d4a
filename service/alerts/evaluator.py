"""The rules' evaluation: each subject's state, its transitions and the notifications they cause.

States, as Grafana's alert rules have them: ``ok``; ``pending`` while the condition has held for less
than ``for_seconds``; ``firing``; ``resolved`` once it clears after firing (a pending one goes back to
ok). A firing subject notifies once when it starts firing, again every ``repeat_seconds`` while it
fires, and once when it resolves. A silence (of the rule, or of the pipeline) holds notifications
back but not transitions: a subject that started firing under a silence notifies when the silence
ends and it still fires; one that resolves under a silence, or was never notified, sends no
"resolved". The clock is a parameter, so tests step time instead of waiting for it.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from exporters.store.alert_queries import AlertQueries
from exporters.store.alerts import AlertStore, Change, Evaluated, Instance, Notification, StoredRule
from service.alerts import messages
from service.alerts.conditions import Condition, Counters, conditions

_logger = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Evaluator:
    def __init__(
        self,
        alerts: AlertStore,
        queries: AlertQueries,
        counters: Counters,
        base_url: Callable[[], str | None],
        clock: Clock = utc_now,
    ) -> None:
        self.alerts = alerts
        self.queries = queries
        self.base_url = base_url
        self.clock = clock
        self._conditions: dict[str, Condition] = conditions(counters)

    def evaluate_once(self) -> int:
        """Evaluate every enabled rule once; return how many notifications were queued."""
        now = self.clock()
        instances = self.alerts.instances()
        silences = [s for s in self.alerts.silences() if s["until_time"] > now]
        queries = self.queries.for_one_evaluation()
        changes: list[Change] = []
        evaluated: list[Evaluated] = []
        for rule in self.alerts.rules():
            if not rule.definition.get("enabled", True):
                continue
            try:
                findings = self._conditions[rule.kind](queries, {**rule.definition, "id": rule.id}, now)
            except Exception as exc:
                # One rule's failure (a query the store refused) leaves the others evaluated.
                _logger.exception("alert rule %s (%s) could not be evaluated", rule.id, rule.name)
                evaluated.append((rule.id, f"{type(exc).__name__}: {exc}"))
                continue
            current = instances.get(rule.id, {})
            for key in sorted(set(findings) | set(current)):
                instance = current.get(key) or Instance(rule.id, key, "ok", now)
                change = self._step(rule, instance, findings.get(key), now, silences)
                if change is not None:
                    changes.append(change)
            evaluated.append((rule.id, None))
        self.alerts.save(changes, evaluated, now)
        return sum(len(change.notifications) for change in changes)

    def _step(
        self,
        rule: StoredRule,
        instance: Instance,
        finding: dict[str, Any] | None,
        now: datetime.datetime,
        silences: Sequence[Mapping[str, Any]],
    ) -> Change | None:
        """Move one subject on; the change to keep, or None when nothing changed."""
        before, details_before = instance.state, instance.details
        definition = rule.definition
        event: str | None = None
        if finding is not None:
            instance.details = finding
            if instance.state in ("ok", "resolved"):
                instance.state, instance.since, instance.active_since = "pending", now, now
                instance.notified_at = None
            held = (now - (instance.active_since or now)).total_seconds()
            if instance.state == "pending" and held >= definition["for_seconds"]:
                instance.state, instance.since = "firing", now
        elif instance.state == "pending":
            instance.state, instance.since, instance.active_since = "ok", now, None
        elif instance.state == "firing":
            instance.state, instance.since = "resolved", now
        silenced = _silenced(rule, instance, silences)
        if instance.state == "firing" and not silenced:
            repeat = definition.get("repeat_seconds")
            if instance.notified_at is None:
                event = "firing"
            elif repeat is not None and (now - instance.notified_at).total_seconds() >= repeat:
                event = "repeat"
        elif instance.state == "resolved" and before == "firing":
            if instance.notified_at is not None and not silenced:
                event = "resolved"
            instance.notified_at = None
        notifications: list[Notification] = []
        if event is not None:
            status = "resolved" if event == "resolved" else "firing"
            message = messages.alert(rule, instance, status, now, self.base_url())
            notifications = [
                Notification(i, target["type"], event, message)
                for i, target in enumerate(definition["notify"])
            ]
            if event != "resolved":
                instance.notified_at = now
        if instance.state == before and not notifications and _same(instance.details, details_before):
            return None
        if instance.state != before:
            _logger.info("alert %s [%s] %s -> %s", rule.name, instance.key, before, instance.state)
        return Change(instance, rule.name, before, silenced, notifications)

    def test_message(self, rule: StoredRule, now: datetime.datetime) -> dict[str, Any]:
        """A firing alert that says it is a test, for the "send test notification" action."""
        instance = Instance(rule.id, "test", "firing", now, now, None,
                            {"summary": f"test notification of rule {rule.name}"})  # fmt: skip
        message = messages.alert(rule, instance, "firing", now, self.base_url())
        message["labels"]["test"] = "true"
        return message


def _silenced(rule: StoredRule, instance: Instance, silences: Sequence[Mapping[str, Any]]) -> bool:
    pipeline_id = instance.details.get("pipeline_id")
    for silence in silences:
        if silence["rule_id"] not in (None, rule.id):
            continue
        if silence["pipeline_id"] not in (None, pipeline_id):
            continue
        return True
    return False


# Figures that move with every evaluation (an age, a count): a change of these alone is not written,
# so a firing freshness rule costs no write per evaluation. A new run, trace or error is.
_MOVING = frozenset({"value", "summary", "records", "at_level"})


def _same(details: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
    return {k: v for k, v in details.items() if k not in _MOVING} == {
        k: v for k, v in before.items() if k not in _MOVING
    }
