"""Alert rules, the state of each rule's subjects, their history, deliveries and silences.

A rule is kept as the JSON the API took, with each notification URL masked; the URLs themselves are
secrets and go to a 0600 file beside the store, as pipeline secrets do (``pipelines``). A transition,
its history row and the notifications it causes are written in one transaction, before anything is
sent: after a restart a notification is either still pending (and sent then) or recorded as sent.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from exporters.store.connection import TelemetryStore
from exporters.store.statements import record, records, statement

STATES = ("ok", "pending", "firing", "resolved")

_RULE_INSERT = statement("alert_rule_insert")
_RULE_UPDATE = statement("alert_rule_update")
_RULE_DELETE = statement("alert_rule_delete")
_RULE_INSTANCES_DELETE = statement("alert_rule_instances_delete")
_RULE = statement("alert_rule")
_RULES = statement("alert_rules")
_RULE_EVALUATED = statement("alert_rule_evaluated")
_RULES_EVALUATED = statement("alert_rules_evaluated")
_INSTANCES = statement("alert_instances")
_INSTANCE_UPSERT = statement("alert_instance_upsert")
_HISTORY_INSERT = statement("alert_history_insert")
_HISTORY = statement("alert_history")
_DELIVERY_INSERT = statement("alert_delivery_insert")
_DELIVERY_UPDATE = statement("alert_delivery_update")
_DELIVERIES_PENDING = statement("alert_deliveries_pending")
_DELIVERIES_OF_HISTORY = statement("alert_deliveries_of_history")
_DELIVERY = statement("alert_delivery")
_SILENCE_INSERT = statement("alert_silence_insert")
_SILENCES = statement("alert_silences")
_SILENCE_DELETE = statement("alert_silence_delete")
_HISTORY_DELETE_BEFORE = statement("alert_history_delete_before")
_DELIVERIES_DELETE_BEFORE = statement("alert_deliveries_delete_before")


def iso(value: datetime.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class StoredRule:
    id: str
    name: str
    kind: str
    definition: dict[str, Any]
    created_at: datetime.datetime
    updated_at: datetime.datetime
    evaluated_at: datetime.datetime | None
    evaluation_error: str | None


@dataclass
class Instance:
    """One subject of one rule (a pipeline, an exporter, or '' for the whole store) and its state."""

    rule_id: str
    key: str
    state: str = "ok"
    since: datetime.datetime | None = None
    active_since: datetime.datetime | None = None  # when the condition last became true
    notified_at: datetime.datetime | None = None  # the last firing notification of this firing
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "state": self.state, "since": iso(self.since),
                "active_since": iso(self.active_since), "notified_at": iso(self.notified_at),
                "details": self.details}  # fmt: skip


@dataclass(frozen=True)
class Notification:
    """A notification to queue: which of the rule's targets, over which channel, for which event."""

    target: int
    channel: str
    event: str  # firing, repeat, resolved or test
    message: dict[str, Any]


@dataclass(frozen=True)
class Change:
    """An instance whose state, details or last notification an evaluation changed; a transition is
    recorded when its state changed or it caused a notification (``event``)."""

    instance: Instance
    rule_name: str
    from_state: str
    silenced: bool
    event: str | None = None


@dataclass(frozen=True)
class Group:
    """One notification per target for a rule's alerts (its subjects ``keys``), as Alertmanager sends
    a group: recorded against each of those subjects' transitions."""

    rule_id: str
    keys: Sequence[str]
    notifications: Sequence[Notification]


# A rule evaluated, and its error (None when it was evaluated).
Evaluated = tuple[str, str | None]


@dataclass(frozen=True)
class Delivery:
    id: str
    rule_id: str
    target: int
    channel: str
    event: str
    message: dict[str, Any]
    attempts: int


class AlertStore:
    """Reads and writes the ``alert_*`` tables; notification URLs go to ``alert-<rule>.json`` files."""

    def __init__(self, store: TelemetryStore, secrets_dir: Path) -> None:
        self.store = store
        self.secrets_dir = secrets_dir

    def _secrets_path(self, rule_id: str) -> Path:
        return self.secrets_dir / f"alert-{rule_id}.json"

    def _write_secrets(self, rule_id: str, secrets: Sequence[str | None]) -> None:
        self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self._secrets_path(rule_id), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(orjson.dumps(list(secrets)))

    def rule_secrets(self, rule_id: str) -> list[str | None]:
        """Each notification target's URL (None for a target without one), in the rule's order."""
        path = self._secrets_path(rule_id)
        found: list[str | None] = orjson.loads(path.read_bytes()) if path.exists() else []
        return found

    def create_rule(
        self, definition: Mapping[str, Any], secrets: Sequence[str | None], now: datetime.datetime
    ) -> StoredRule:
        rule_id = uuid.uuid4().hex[:16]
        self._write_secrets(rule_id, secrets)
        with self.store.writer() as cur:
            _RULE_INSERT.run(cur, {"id": rule_id, **_rule_values(definition), "now": now})
        found = self.rule(rule_id)
        assert found is not None
        return found

    def update_rule(
        self,
        rule_id: str,
        definition: Mapping[str, Any],
        secrets: Sequence[str | None],
        now: datetime.datetime,
    ) -> StoredRule | None:
        """Replace a rule's definition. Its subjects start again from ok: the condition may be another."""
        if self.rule(rule_id) is None:
            return None
        self._write_secrets(rule_id, secrets)
        with self.store.writer() as cur:
            cur.execute("BEGIN TRANSACTION")
            _RULE_UPDATE.run(cur, {"id": rule_id, **_rule_values(definition), "now": now})
            _RULE_INSTANCES_DELETE.run(cur, {"rule_id": rule_id})
            cur.execute("COMMIT")
        return self.rule(rule_id)

    def delete_rule(self, rule_id: str) -> bool:
        """Forget a rule, its state and its secrets; its history stays."""
        with self.store.writer() as cur:
            cur.execute("BEGIN TRANSACTION")
            deleted = _RULE_DELETE.run(cur, {"id": rule_id}).fetchall()
            _RULE_INSTANCES_DELETE.run(cur, {"rule_id": rule_id})
            cur.execute("COMMIT")
        self._secrets_path(rule_id).unlink(missing_ok=True)
        return bool(deleted)

    def rule(self, rule_id: str) -> StoredRule | None:
        row = record(_RULE.run(self.store.cursor(), {"id": rule_id}))
        return _rule(row) if row else None

    def rules(self) -> list[StoredRule]:
        return [_rule(row) for row in records(_RULES.run(self.store.cursor(), {}))]

    def instances(self) -> dict[str, dict[str, Instance]]:
        """Every rule's subjects, by rule id and key."""
        found: dict[str, dict[str, Instance]] = {}
        for row in records(_INSTANCES.run(self.store.cursor(), {})):
            instance = Instance(
                row["rule_id"], row["key"], row["state"], row["since"], row["active_since"],
                row["notified_at"], orjson.loads(row["details"]) if row["details"] else {},
            )  # fmt: skip
            found.setdefault(instance.rule_id, {})[instance.key] = instance
        return found

    def save(
        self,
        changes: Sequence[Change],
        groups: Sequence[Group],
        evaluated: Sequence[Evaluated],
        now: datetime.datetime,
    ) -> list[str]:
        """Keep one evaluation's outcome in one transaction: each changed instance's state, its
        transition, the notifications the rules' groups cause (pending), and when each rule was
        evaluated; return the ids of the deliveries queued. One transaction, not one per subject:
        commits are the cost here."""
        delivery_ids: list[str] = []
        with self.store.writer() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                history: dict[tuple[str, str], int] = {}
                for change in changes:
                    history_id = self._save_change(cur, change, now)
                    if history_id is not None:
                        history[(change.instance.rule_id, change.instance.key)] = history_id
                for group in groups:
                    ids = [history[(group.rule_id, k)] for k in group.keys if (group.rule_id, k) in history]
                    for notification in group.notifications:
                        delivery_ids.append(self._queue(cur, group.rule_id, ids, notification, now))
                fine = [rule_id for rule_id, error in evaluated if error is None]
                if fine:
                    _RULES_EVALUATED.run(cur, {"ids": fine, "now": now})
                for rule_id, error in evaluated:
                    if error is not None:
                        _RULE_EVALUATED.run(cur, {"id": rule_id, "now": now, "error": error})
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
        return delivery_ids

    def _save_change(self, cur: Any, change: Change, now: datetime.datetime) -> int | None:
        instance = change.instance
        details = orjson.dumps(instance.details).decode()
        _INSTANCE_UPSERT.run(cur, {
            "rule_id": instance.rule_id, "key": instance.key, "state": instance.state,
            "since": instance.since or now, "active_since": instance.active_since,
            "notified_at": instance.notified_at, "details": details,
        })  # fmt: skip
        if change.from_state == instance.state and change.event is None:
            return None
        history_id: int = _HISTORY_INSERT.run(cur, {
            "rule_id": instance.rule_id, "rule_name": change.rule_name, "key": instance.key,
            "from_state": change.from_state, "to_state": instance.state, "at": now,
            "silenced": change.silenced, "details": details,
        }).fetchall()[0][0]  # fmt: skip
        return history_id

    def queue(self, rule_id: str, notification: Notification, now: datetime.datetime) -> str:
        """Queue a notification outside any transition (a test notification); return its id."""
        with self.store.writer() as cur:
            return self._queue(cur, rule_id, [], notification, now)

    @staticmethod
    def _queue(
        cur: Any, rule_id: str, history_ids: Sequence[int], notification: Notification, now: datetime.datetime
    ) -> str:
        delivery_id = uuid.uuid4().hex
        _DELIVERY_INSERT.run(cur, {
            "id": delivery_id, "history_id": history_ids[0] if history_ids else None,
            "history_ids": list(history_ids), "rule_id": rule_id, "target": notification.target,
            "channel": notification.channel, "event": notification.event,
            "message": orjson.dumps(notification.message).decode(), "now": now,
        })  # fmt: skip
        return delivery_id

    def pending_deliveries(self) -> list[Delivery]:
        return [
            Delivery(row["id"], row["rule_id"], row["target"], row["channel"], row["event"],
                     orjson.loads(row["message"]), row["attempts"])
            for row in records(_DELIVERIES_PENDING.run(self.store.cursor(), {}))
        ]  # fmt: skip

    def finish_delivery(
        self, delivery_id: str, status: str, attempts: int, last_error: str | None, now: datetime.datetime
    ) -> None:
        with self.store.writer() as cur:
            _DELIVERY_UPDATE.run(cur, {"id": delivery_id, "status": status, "attempts": attempts,
                                       "last_error": last_error, "now": now})  # fmt: skip

    def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        row = record(_DELIVERY.run(self.store.cursor(), {"id": delivery_id}))
        return _delivery(row) if row else None

    def history(self, rule_id: str | None, before_id: int | None, limit: int) -> list[dict[str, Any]]:
        """Transitions, newest first, each with the notifications it caused and how they went."""
        cur = self.store.cursor()
        rows = records(_HISTORY.run(cur, {"rule_id": rule_id, "before_id": before_id, "limit": limit}))
        deliveries: dict[int, list[dict[str, Any]]] = {}
        if rows:
            ids = [row["id"] for row in rows]
            for found in records(_DELIVERIES_OF_HISTORY.run(cur, {"history_ids": ids})):
                # A group's notification belongs to each transition it told of.
                for history_id in found["history_ids"] or [found["history_id"]]:
                    deliveries.setdefault(history_id, []).append(_delivery(found))
        return [
            {"id": row["id"], "rule_id": row["rule_id"], "rule_name": row["rule_name"], "key": row["key"],
             "from": row["from_state"], "to": row["to_state"], "at": iso(row["changed_at"]),
             "silenced": row["silenced"], "details": orjson.loads(row["details"]) if row["details"] else {},
             "deliveries": deliveries.get(row["id"], [])}
            for row in rows
        ]  # fmt: skip

    def prune_history(self, before: datetime.datetime) -> tuple[int, int]:
        """Remove transitions and sent or failed notifications older than ``before``; return how many
        of each. The rules' current state (``alert_instances``) is not history and stays."""
        with self.store.writer() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                deliveries = len(_DELIVERIES_DELETE_BEFORE.run(cur, {"before": before}).fetchall())
                history = len(_HISTORY_DELETE_BEFORE.run(cur, {"before": before}).fetchall())
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
        return history, deliveries

    def add_silence(
        self,
        rule_id: str | None,
        pipeline_id: str | None,
        until: datetime.datetime,
        comment: str | None,
        now: datetime.datetime,
    ) -> dict[str, Any]:
        silence_id = uuid.uuid4().hex[:16]
        with self.store.writer() as cur:
            _SILENCE_INSERT.run(cur, {"id": silence_id, "rule_id": rule_id, "pipeline_id": pipeline_id,
                                      "until": until, "comment": comment, "now": now})  # fmt: skip
        return next(s for s in self.silences() if s["id"] == silence_id)

    def silences(self) -> list[dict[str, Any]]:
        return [
            {"id": row["id"], "rule_id": row["rule_id"], "pipeline_id": row["pipeline_id"],
             "until": iso(row["until"]), "until_time": row["until"], "comment": row["comment"],
             "created_at": iso(row["created_at"])}
            for row in records(_SILENCES.run(self.store.cursor(), {}))
        ]  # fmt: skip

    def delete_silence(self, silence_id: str) -> bool:
        with self.store.writer() as cur:
            return bool(_SILENCE_DELETE.run(cur, {"id": silence_id}).fetchall())


def _rule_values(definition: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": definition["name"],
        "kind": definition["kind"],
        "definition": orjson.dumps(dict(definition)).decode(),
    }


def _rule(row: Mapping[str, Any]) -> StoredRule:
    return StoredRule(
        row["id"], row["name"], row["kind"], orjson.loads(row["definition"]), row["created_at"],
        row["updated_at"], row["evaluated_at"], row["evaluation_error"],
    )  # fmt: skip


def _delivery(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "rule_id": row["rule_id"], "target": row["target"], "channel": row["channel"],
            "event": row["event"], "status": row["status"], "attempts": row["attempts"],
            "last_error": row["last_error"], "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"])}  # fmt: skip
