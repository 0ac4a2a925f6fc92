"""The reporting API: a registry's summaries and reports on request, registry management and
delivery status, behind API keys. Build it with `create_app`; `ledger-pipeline serve` runs it."""

from ledger_pipeline.api.app import ApiSettings, create_app

__all__ = ["ApiSettings", "create_app"]
