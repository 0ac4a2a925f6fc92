"""`ledger-pipeline deliver` and `ledger-pipeline deliveries ...`: webhook delivery from the
command line."""

import typer


def register(app: typer.Typer) -> None:
    """Adds the delivery commands to the `ledger-pipeline` command."""
