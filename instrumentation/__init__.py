"""OpenTelemetry set-up, Flask and pipeline-context instrumentation."""
