"""Observability of the portal itself: request and task context, JSON logs, Prometheus metrics
and opt-in OpenTelemetry tracing.

Nothing here may fail or slow the work it observes: every hook is guarded, metrics are in-process
counters, and spans leave through a batching exporter on a background thread.
"""
