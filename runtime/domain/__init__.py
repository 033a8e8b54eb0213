"""Pure runtime logic (OTLP metric mapping, deltas, percentiles, health rules): no Django."""
