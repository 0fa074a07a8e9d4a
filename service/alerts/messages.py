"""What a notification says, built once when it is queued and shaped per channel when it is sent.

The queued message is one rule's alerts as one Alertmanager group: the webhook body (version 4) but
for ``externalURL``, filled in when it is sent. Each alert has Alertmanager's shape (labels,
annotations, startsAt, endsAt, generatorURL, fingerprint), one per rule and subject, so receivers that
already take Alertmanager's webhook work unchanged; Slack and e-mail list the same alerts. Links point
into the UI at the base URL (``PIPETRACE_PUBLIC_URL``, else the address the service listens on).
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import orjson

from exporters.store.alerts import Instance, StoredRule, iso

RECEIVER = "pipetrace"
# A notification groups one rule's alerts (one per pipeline): the labels it groups them by.
GROUP_BY = ("alertname", "rule_id")
DEFAULT_SEVERITY = "warning"
# Line breaks with the blanks around them, for one-line headers.
_LINE_BREAKS = re.compile(r"[ \t]*[\r\n]+[ \t]*")
# Alertmanager's "not ended yet".
NOT_ENDED = "0001-01-01T00:00:00Z"


def links(base_url: str | None, finding: Mapping[str, Any]) -> dict[str, str]:
    """The UI's pages for the run, its trace and the pipeline's logs; none without a base URL."""
    if not base_url:
        return {}
    base = base_url.rstrip("/") + "/#"
    found: dict[str, str] = {}
    pipeline_id, run_id, trace_id = finding.get("pipeline_id"), finding.get("run_id"), finding.get("trace_id")
    if run_id:
        found["run_url"] = f"{base}/run/{quote(str(run_id))}"
    if trace_id:
        found["trace_url"] = f"{base}/trace/{quote(str(trace_id))}"
    if pipeline_id:
        logs = f"{base}/logs?pipeline_id={quote(str(pipeline_id))}"
        found["logs_url"] = logs + (f"&run_id={quote(str(run_id))}" if run_id else "")
    return found


def alert(
    rule: StoredRule, instance: Instance, status: str, now: datetime.datetime, base_url: str | None
) -> dict[str, Any]:
    """One alert, Alertmanager's shape: ``status`` firing or resolved. Its labels say which rule and
    which subject (the pipeline) it is, so a rule over several pipelines makes one alert per pipeline."""
    finding = instance.details
    labels = {
        "alertname": rule.name,
        "rule_id": rule.id,
        "kind": rule.kind,
        "severity": str(rule.definition.get("severity", DEFAULT_SEVERITY)),
    }
    if finding.get("pipeline_id"):
        labels["pipeline_id"] = str(finding["pipeline_id"])
    if instance.key and instance.key != finding.get("pipeline_id"):
        labels["subject"] = instance.key
    found_links = links(base_url, finding)
    annotations = {"summary": str(finding.get("summary", rule.name))}
    for name in ("run_id", "trace_id", "value"):
        if finding.get(name) is not None:
            annotations[name] = str(finding[name])
    if finding.get("error") is not None:
        annotations["error"] = orjson.dumps(finding["error"]).decode()
    annotations.update(found_links)
    # Alertmanager's fingerprint is a 64-bit hash of the label set, written as 16 hex digits.
    fingerprint = hashlib.sha256(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": iso(instance.active_since or now),
        "endsAt": iso(now) if status == "resolved" else NOT_ENDED,
        "generatorURL": found_links.get("run_url") or found_links.get("logs_url") or (base_url or ""),
        "fingerprint": fingerprint,
    }


def _common(mappings: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every mapping has, as Alertmanager's commonLabels and commonAnnotations are made."""
    if not mappings:
        return {}
    first, rest = mappings[0], mappings[1:]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def _label_set(labels: Mapping[str, str]) -> str:
    """A label set written as Alertmanager writes one (Go's model.LabelSet.String): sorted, quoted."""
    return "{" + ", ".join(f"{k}={orjson.dumps(v).decode()}" for k, v in sorted(labels.items())) + "}"


def group(alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One rule's alerts as one notification, grouped as Alertmanager groups by ``GROUP_BY``: the
    webhook body (version 4) but for ``externalURL``, which is filled in when it is sent."""
    group_labels = {name: alerts[0]["labels"][name] for name in GROUP_BY}
    return {
        "version": "4",
        "groupKey": "{}:" + _label_set(group_labels),
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": RECEIVER,
        "groupLabels": group_labels,
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "alerts": [dict(a) for a in alerts],
    }


def _as_group(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """A queued message; one queued before alerts were grouped holds a single alert."""
    return message if "alerts" in message else group([message])


def alertmanager_payload(message: Mapping[str, Any], base_url: str | None) -> dict[str, Any]:
    """Alertmanager's webhook body, version 4, for one group of alerts."""
    return {**_as_group(message), "externalURL": base_url or ""}


def _headline(message: Mapping[str, Any], event: str) -> str:
    status = "TEST" if event == "test" else message["status"].upper()
    alerts = message["alerts"]
    if len(alerts) == 1:
        return f"[{status}] {message['groupLabels']['alertname']}: {alerts[0]['annotations']['summary']}"
    firing = sum(a["status"] == "firing" for a in alerts)
    return (
        f"[{status}] {message['groupLabels']['alertname']}: {firing} firing, {len(alerts) - firing} resolved"
    )


def _alert_lines(alert: Mapping[str, Any]) -> list[str]:
    return [f"[{alert['status'].upper()}] {alert['annotations']['summary']}"]


def slack_payload(message: Mapping[str, Any], event: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: the headline, then each alert with its links as Slack's
    <url|text>."""
    grouped = _as_group(message)
    lines = [_headline(grouped, event)]
    for alert in grouped["alerts"]:
        annotations = alert["annotations"]
        if len(grouped["alerts"]) > 1:
            lines += _alert_lines(alert)
        for name, text in (("run_url", "run"), ("trace_url", "trace"), ("logs_url", "logs")):
            if name in annotations:
                lines.append(f"<{annotations[name]}|{text}>")
    return {"text": "\n".join(lines)}


def email_message(message: Mapping[str, Any], event: str, sender: str, to: list[str]) -> EmailMessage:
    grouped = _as_group(message)
    email = EmailMessage()
    # A header is one line (the email package refuses a line break in one): a run's error often has
    # several, which the body keeps as they are.
    email["Subject"] = _LINE_BREAKS.sub(" ", _headline(grouped, event))
    email["From"] = sender
    email["To"] = ", ".join(to)
    body = [_headline(grouped, event)]
    for alert in grouped["alerts"]:
        body += ["", *_alert_lines(alert)]
        body += [f"{name}: {value}" for name, value in alert["labels"].items()]
        body += [f"{name}: {value}" for name, value in alert["annotations"].items() if name != "summary"]
        body += [f"started: {alert['startsAt']}"]
        if alert["status"] == "resolved":
            body.append(f"resolved: {alert['endsAt']}")
    email.set_content("\n".join(body) + "\n")
    return email
