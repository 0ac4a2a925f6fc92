"""ledger_pipeline: order events posted as balanced double-entry ledger entries."""
