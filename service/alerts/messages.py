"""What a notification says, built once when it is queued and shaped per channel when it is sent.

The queued message is one alert in the Prometheus Alertmanager shape (labels, annotations, startsAt,
endsAt, generatorURL, fingerprint), so the webhook payload is a wrapper around it and receivers that
already take Alertmanager's webhook work unchanged. Links point into the UI at the base URL
(``PIPETRACE_PUBLIC_URL``, else the address the service listens on).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import orjson

from exporters.store.alerts import Instance, StoredRule, iso

RECEIVER = "pipetrace"
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
    """One alert, Alertmanager's shape: ``status`` firing or resolved."""
    finding = instance.details
    labels = {"alertname": rule.name, "rule_id": rule.id, "kind": rule.kind}
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


def alertmanager_payload(message: Mapping[str, Any], base_url: str | None) -> dict[str, Any]:
    """Alertmanager's webhook body, version 4, for one alert (a group of one: this rule and subject)."""
    labels = message["labels"]
    group_labels = {"alertname": labels["alertname"]}
    return {
        "version": "4",
        "groupKey": "{}:" + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}",
        "truncatedAlerts": 0,
        "status": message["status"],
        "receiver": RECEIVER,
        "groupLabels": group_labels,
        "commonLabels": dict(labels),
        "commonAnnotations": dict(message["annotations"]),
        "externalURL": base_url or "",
        "alerts": [dict(message)],
    }


def _headline(message: Mapping[str, Any], event: str) -> str:
    status = "TEST" if event == "test" else message["status"].upper()
    return f"[{status}] {message['labels']['alertname']}: {message['annotations']['summary']}"


def slack_payload(message: Mapping[str, Any], event: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: the headline, then each link as Slack's <url|text>."""
    annotations = message["annotations"]
    lines = [_headline(message, event)]
    for name, text in (("run_url", "run"), ("trace_url", "trace"), ("logs_url", "logs")):
        if name in annotations:
            lines.append(f"<{annotations[name]}|{text}>")
    return {"text": "\n".join(lines)}


def email_message(message: Mapping[str, Any], event: str, sender: str, to: list[str]) -> EmailMessage:
    email = EmailMessage()
    email["Subject"] = _headline(message, event)
    email["From"] = sender
    email["To"] = ", ".join(to)
    body = [_headline(message, event), ""]
    body += [f"{name}: {value}" for name, value in message["labels"].items()]
    body += [f"{name}: {value}" for name, value in message["annotations"].items() if name != "summary"]
    body += [f"started: {message['startsAt']}"]
    if message["status"] == "resolved":
        body.append(f"resolved: {message['endsAt']}")
    email.set_content("\n".join(body) + "\n")
    return email
