"""`ledger-pipeline serve`, `ledger-pipeline receive` and `ledger-pipeline api-key ...`: the
reporting API, a local webhook receiver, and the API's keys."""

import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from ledger_pipeline import receiver as webhook_receiver
from ledger_pipeline.api import ApiSettings, create_app
from ledger_pipeline.cli_support import moment_text, open_store, user_errors
from ledger_pipeline.errors import LedgerError
from ledger_pipeline.settings import Settings, timezone_named
from ledger_pipeline.storage.api_keys import ApiKeyStore

logger = logging.getLogger(__name__)

api_key_app = typer.Typer(
    help="API keys of the reporting API: a read key gets summaries and reports, a manage key "
    "also manages registries and deliveries.",
    no_args_is_help=True,
)


class Scope(StrEnum):
    READ = "read"
    MANAGE = "manage"


def register(app: typer.Typer) -> None:
    """Adds the API and receiver commands to the `ledger-pipeline` command."""
    app.add_typer(api_key_app, name="api-key")
    app.command()(serve)
    app.command()(receive)


# API keys


@api_key_app.command("create")
def api_key_create(
    name: Annotated[
        str, typer.Option("--name", help="Who or what uses the key, e.g. the accounting system.")
    ],
    scope: Annotated[
        Scope, typer.Option("--scope", help="read: summaries and reports; manage: everything.")
    ],
) -> None:
    """Make an API key and print it, this once: only its hash is kept."""
    with user_errors(), open_store() as store:
        created = ApiKeyStore(store).create(name, scope.value)
    typer.echo(f"created API key {created.api_key.id} ({created.api_key.scope}) for {name}")
    typer.echo(f"key: {created.token}")
    typer.echo("(shown once: send it as Authorization: Bearer <key>)")


@api_key_app.command("list")
def api_key_list() -> None:
    """List the API keys (never the keys themselves), revoked ones too."""
    with user_errors(), open_store() as store:
        api_keys = ApiKeyStore(store).list()
    if not api_keys:
        typer.echo("no API keys")
        return
    for api_key in api_keys:
        state = f"revoked {moment_text(api_key.revoked_at)}" if api_key.revoked else "active"
        typer.echo(
            f"{api_key.id}  {api_key.scope:<6}  {state}, created {moment_text(api_key.created_at)}"
            f", last used {moment_text(api_key.last_used_at)}  {api_key.name}"
        )


@api_key_app.command("revoke")
def api_key_revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (see api-key list).")],
) -> None:
    """Revoke an API key: requests with it are refused from now on."""
    with user_errors(), open_store() as store:
        api_key = ApiKeyStore(store).revoke(key_id)
    typer.echo(f"revoked API key {api_key.id} ({api_key.name})")


# The API server


def serve(
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port to listen on.")] = 8000,
) -> None:
    """Run the reporting API (OpenAPI documentation at /docs).

    It serves the ledger named by LEDGER_DATABASE_URL; LEDGER_API_MAX_DAYS (default 366) is the
    longest range of dates one summary or report request may ask for. Ctrl-C stops it.
    """
    with user_errors():
        application = create_app(ApiSettings.from_environment())
    typer.echo(f"reporting API at http://{host}:{port} (documentation: /docs)", err=True)
    uvicorn.run(application, host=host, port=port, log_level="info")


# The receiver


def receive(
    secret: Annotated[
        list[str],
        typer.Option(
            "--secret",
            metavar="SECRET",
            envvar="LEDGER_RECEIVER_SECRET",
            help="The registry's whsec_ secret (repeat for the previous one while rotating). "
            "Also read from LEDGER_RECEIVER_SECRET, which keeps it out of the process list.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", metavar="FILE", help="Append each request here as JSON.")
    ],
    port: Annotated[int, typer.Option(min=0, max=65535, help="The port to listen on.")] = 8787,
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    beancount: Annotated[
        Path | None,
        typer.Option(
            "--beancount",
            metavar="FILE",
            help="Also write each new ledger_summary as a beancount transaction here.",
        ),
    ] = None,
    fail_rate: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Answer 503 to this fraction of deliveries, e.g. 0.2."),
    ] = 0.0,
    seed: Annotated[
        int | None, typer.Option(help="Seed the choice of failures, to repeat a run exactly.")
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="Date transactions in this time zone; default LEDGER_TIMEZONE, else UTC."
        ),
    ] = None,
) -> None:
    """Receive webhook deliveries: verify each with the standardwebhooks package, answer, and
    append it to FILE (see docs/api.md). Ctrl-C stops it and prints the counts."""
    with user_errors():
        zone = (
            timezone_named(timezone, "--timezone")
            if timezone
            else Settings.from_environment().timezone
        )
        receiver = webhook_receiver.Receiver(
            secret, out, beancount=beancount, fail_rate=fail_rate, seed=seed, timezone=zone
        )
        try:
            server = webhook_receiver.serve(receiver, host, port)
        except OSError as error:
            raise LedgerError(f"cannot listen on {host}:{port}: {error.strerror}") from None

    address, bound_port = server.server_address[:2]
    typer.echo(f"receiving deliveries at http://{address}:{bound_port}/ (Ctrl-C stops)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    counts = ", ".join(f"{count} {what}" for what, count in receiver.counts.items())
    typer.echo(f"received: {counts}", err=True)
