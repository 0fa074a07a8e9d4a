"""The rules' evaluation: each subject's state, its transitions and the notifications they cause.

States, as Grafana's alert rules have them: ``ok``; ``pending`` while the condition has held for less
than ``for_seconds``; ``firing``; ``resolved`` once it clears after firing (a pending one goes back to
ok). A firing subject notifies once when it starts firing, again every ``repeat_seconds`` while it
fires, and once when it resolves. A silence (of the rule, or of the pipeline) holds notifications
back but not transitions: a subject that started firing under a silence notifies when the silence
ends and it still fires; one that resolves under a silence, or was never notified, sends no
"resolved". A rule's notifications go out as one group, as Alertmanager sends them (``_collect``),
and a rule edited or deleted while it fires resolves first (``resolve_all``). The clock is a
parameter, so tests step time instead of waiting for it.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporters.store.alert_queries import AlertQueries
from exporters.store.alerts import AlertStore, Change, Evaluated, Group, Instance, Notification, StoredRule
from service.alerts import messages
from service.alerts.conditions import Condition, Counters, conditions

_logger = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class _Step:
    """One subject moved on by one evaluation, and the notification event it calls for, if any."""

    instance: Instance
    before: str
    details_before: dict[str, Any]
    notified_before: datetime.datetime | None
    silenced: bool
    event: str | None  # firing, repeat or resolved


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
        # One writer of the instances at a time: the loop, or a request that edits or deletes a rule.
        self.lock = threading.RLock()

    def evaluate_once(self) -> int:
        """Evaluate every enabled rule once; return how many notifications were queued."""
        with self.lock:
            return self._evaluate_once()

    def _evaluate_once(self) -> int:
        now = self.clock()
        instances = self.alerts.instances()
        silences = [s for s in self.alerts.silences() if s["until_time"] > now]
        rules = self.alerts.rules()
        # slow_run rules read their pipelines' last_n + 1 runs: one read of the most any of them needs.
        per_pipeline = max(
            (r.definition["params"]["last_n"] + 1 for r in rules if r.kind == "slow_run"), default=0
        )
        queries = self.queries.for_one_evaluation(per_pipeline)
        changes: list[Change] = []
        groups: list[Group] = []
        evaluated: list[Evaluated] = []
        for rule in rules:
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
            steps = [
                self._step(rule, current.get(key) or Instance(rule.id, key, "ok", now),
                           findings.get(key), now, silences)
                for key in sorted(set(findings) | set(current))
            ]  # fmt: skip
            self._collect(rule, steps, now, changes, groups)
            evaluated.append((rule.id, None))
        self.alerts.save(changes, groups, evaluated, now)
        return sum(len(group.notifications) for group in groups)

    def resolve_all(self, rule: StoredRule, reason: str) -> list[str]:
        """The rule is edited or deleted: each of its notified firing subjects resolves now, one
        "resolved" notification for them all; return the ids of the deliveries queued. The caller
        sends them before the rule changes, to the targets that were told it fired."""
        with self.lock:
            now = self.clock()
            silences = [s for s in self.alerts.silences() if s["until_time"] > now]
            steps: list[_Step] = []
            for instance in self.alerts.instances().get(rule.id, {}).values():
                if instance.state not in ("firing", "pending"):
                    continue
                before, details, notified = instance.state, dict(instance.details), instance.notified_at
                instance.details = {**instance.details, "resolved_because": reason}
                instance.state, instance.since, instance.active_since = (
                    ("resolved", now, instance.active_since) if before == "firing" else ("ok", now, None)
                )
                silenced = _silenced(rule, instance, silences)
                told = before == "firing" and notified is not None and not silenced
                instance.notified_at = None
                steps.append(
                    _Step(instance, before, details, notified, silenced, "resolved" if told else None)
                )
            changes: list[Change] = []
            groups: list[Group] = []
            self._collect(rule, steps, now, changes, groups)
            return self.alerts.save(changes, groups, [], now)

    def _step(
        self,
        rule: StoredRule,
        instance: Instance,
        finding: dict[str, Any] | None,
        now: datetime.datetime,
        silences: Sequence[Mapping[str, Any]],
    ) -> _Step:
        """Move one subject on and say which notification event, if any, it calls for."""
        before, details_before, notified_before = instance.state, instance.details, instance.notified_at
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
        return _Step(instance, before, details_before, notified_before, silenced, event)

    def _collect(
        self, rule: StoredRule, steps: Sequence[_Step], now: datetime.datetime, changes: list[Change],
        groups: list[Group],
    ) -> None:  # fmt: skip
        """Keep what changed, and group the rule's alerts into one notification as Alertmanager does:
        when any subject starts firing, is due again or resolves, the notification carries every
        firing subject of the rule that is not silenced, and the ones resolving now. Each firing one
        is then counted as told, so the rule repeats as one group."""
        events = {step.event for step in steps if step.event is not None}
        included: list[_Step] = []
        if events:
            included = [
                step for step in steps
                if step.event == "resolved" or (step.instance.state == "firing" and not step.silenced)
            ]  # fmt: skip
        event = next((e for e in ("firing", "repeat", "resolved") if e in events), None)
        for step in included:
            if step.instance.state == "firing":
                step.instance.notified_at = now
        for step in steps:
            instance = step.instance
            if (
                instance.state == step.before
                and step.event is None
                and instance.notified_at == step.notified_before
                and _same(instance.details, step.details_before)
            ):
                continue
            if instance.state != step.before:
                _logger.info("alert %s [%s] %s -> %s", rule.name, instance.key, step.before, instance.state)
            changes.append(Change(instance, rule.name, step.before, step.silenced, step.event))
        if event is None or not included or not rule.definition["notify"]:
            return
        base_url = self.base_url()
        message = messages.group([
            messages.alert(rule, step.instance, "resolved" if step.event == "resolved" else "firing", now,
                           base_url)
            for step in included
        ])  # fmt: skip
        notifications = [
            Notification(i, target["type"], event, message)
            for i, target in enumerate(rule.definition["notify"])
        ]
        groups.append(Group(rule.id, [step.instance.key for step in included], notifications))

    def test_message(self, rule: StoredRule, now: datetime.datetime) -> dict[str, Any]:
        """A firing alert that says it is a test, for the "send test notification" action."""
        instance = Instance(rule.id, "test", "firing", now, now, None,
                            {"summary": f"test notification of rule {rule.name}"})  # fmt: skip
        alert = messages.alert(rule, instance, "firing", now, self.base_url())
        alert["labels"]["test"] = "true"
        return messages.group([alert])


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
