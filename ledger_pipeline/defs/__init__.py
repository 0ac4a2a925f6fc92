"""The Dagster code location: one folder per domain, assembled by `ledger_pipeline.definitions`."""
