"""Alerts: rules over runs, logs and the ingest path, evaluated in a loop, notifying by webhook
(Alertmanager's payload), Slack and e-mail.

``rules`` validates a rule; ``conditions`` says, per kind, for which subjects it holds; ``evaluator``
moves each subject through ok, pending, firing and resolved and queues notifications; ``messages``
shapes them; ``delivery`` sends them with retries; ``service`` wires these to the app. The store side
is ``exporters.store.alerts`` (rules, state, history) and ``exporters.store.alert_queries``.
"""
