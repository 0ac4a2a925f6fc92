"""`ledger-pipeline deliver` and `ledger-pipeline deliveries ...`: webhook delivery from the
command line."""

import datetime as dt
from enum import StrEnum
from typing import Annotated

import typer

from ledger_pipeline.cli_support import counted, moment_text, open_store, user_errors
from ledger_pipeline.delivery.worker import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_WORKERS,
    DeliveryPassReport,
    deliver_pass,
)
from ledger_pipeline.errors import DeliveryError
from ledger_pipeline.storage.deliveries import MAX_DELIVERY_ID, Delivery, DeliveryStore

deliveries_app = typer.Typer(
    help="Webhook deliveries: list them, show their attempts, replay or skip them.",
    no_args_is_help=True,
)


class StatusChoice(StrEnum):
    PENDING = "pending"
    FAILING = "failing"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    SKIPPED = "skipped"


DeliveryIds = Annotated[
    list[int] | None,
    typer.Argument(metavar="ID...", min=1, max=MAX_DELIVERY_ID, help="Delivery ids (see `list`)."),
]
RegistryFilter = Annotated[
    str | None, typer.Option("--registry", metavar="NAME", help="Only this registry's.")
]


def register(app: typer.Typer) -> None:
    """Adds the delivery commands to the `ledger-pipeline` command."""
    app.command("deliver")(deliver)
    app.add_typer(deliveries_app, name="deliveries")


def deliver(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Deliveries claimed at a time.")
    ] = DEFAULT_BATCH_SIZE,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Deliveries sent at once.")
    ] = DEFAULT_WORKERS,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to connect and to read.")
    ] = DEFAULT_TIMEOUT_SECONDS,
    budget: Annotated[
        float | None,
        typer.Option("--budget", min=0, help="Claim no new batch after this many seconds."),
    ] = None,
) -> None:
    """Send the deliveries that are due, once: batch after batch until none is due.

    Each delivery is POSTed with its stored body, signed now; every attempt is recorded. A
    failed one is tried again later (see `deliveries list --status failing`), a 410 disables
    its registry, and after the last try a delivery is dead until replayed or skipped.
    """
    with user_errors(), open_store() as store:
        report = deliver_pass(
            store,
            batch_size=batch_size,
            workers=workers,
            timeout=timeout,
            time_budget=None if budget is None else dt.timedelta(seconds=budget),
        )
    for line in report_lines(report):
        typer.echo(line)


@deliveries_app.command("list")
def deliveries_list(
    status: Annotated[
        StatusChoice | None,
        typer.Option("--status", help="Only these (failing: pending after a failed attempt)."),
    ] = None,
    registry: RegistryFilter = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_DELIVERY_ID, help="At most this many.")
    ] = 50,
) -> None:
    """List deliveries, newest first: id, registry, order and version, status, attempts."""
    with user_errors(), open_store() as store:
        deliveries = DeliveryStore(store).list(
            status=status.value if status else None, registry=registry, limit=limit + 1
        )
    if not deliveries:
        typer.echo("no deliveries")
    for delivery in deliveries[:limit]:
        typer.echo(_delivery_line(delivery))
    if len(deliveries) > limit:
        typer.echo(f"(the newest {limit} shown: --limit N shows more)", err=True)


@deliveries_app.command("show")
def deliveries_show(
    delivery_id: Annotated[
        int, typer.Argument(metavar="ID", min=1, max=MAX_DELIVERY_ID, help="The delivery's id.")
    ],
) -> None:
    """Show a delivery and every attempt: status, latency, the start of the response, error."""
    with user_errors(), open_store() as store:
        detail = DeliveryStore(store).get(delivery_id)
    delivery = detail.delivery
    typer.echo(f"delivery {delivery.id}: {delivery.status}")
    typer.echo(f"registry: {delivery.registry}")
    typer.echo(f"event: {delivery.event_id} (order {delivery.order_id} v{delivery.order_version})")
    typer.echo(f"idempotency key: {delivery.idempotency_key}")
    typer.echo(f"webhook-id: {delivery.webhook_id}")
    typer.echo(f"body: {delivery.body_bytes} bytes")
    typer.echo(f"queued: {moment_text(delivery.created_at)}")
    if delivery.status == "pending":
        typer.echo(f"next attempt: {moment_text(delivery.next_attempt_at)}")
    if delivery.lease_owner and delivery.lease_expires_at:
        typer.echo(
            f"claimed by: {delivery.lease_owner} until {moment_text(delivery.lease_expires_at)}"
        )
    typer.echo(f"delivered: {moment_text(delivery.delivered_at)}")
    typer.echo(f"attempts: {len(detail.attempts)}")
    for attempt in detail.attempts:
        status = attempt.status_code if attempt.status_code is not None else "no response"
        typer.echo(
            f"  {attempt.number}. {moment_text(attempt.started_at)} {status} "
            f"in {attempt.latency_ms} ms by {attempt.worker}"
            + (f": {attempt.error}" if attempt.error else "")
        )
        if attempt.response_excerpt:
            typer.echo(f"     response: {_one_line(attempt.response_excerpt)}")


@deliveries_app.command("replay")
def deliveries_replay(
    delivery_ids: DeliveryIds = None,
    registry: RegistryFilter = None,
    status: Annotated[
        StatusChoice | None,
        typer.Option("--status", help="With --registry or alone: which to replay (default dead)."),
    ] = None,
) -> None:
    """Send dead, skipped or failing deliveries again, now, with a fresh series of tries.

    Give ids, or `--registry NAME` and/or `--status dead|skipped|failing`. A succeeded delivery
    is not sent again. The delivery keeps its bytes, idempotency key and webhook-id.
    """
    with user_errors():
        if delivery_ids and (registry or status):
            raise DeliveryError("give delivery ids or --registry/--status, not both")
        with open_store() as store:
            replayed = DeliveryStore(store).replay(
                delivery_ids or (),
                registry=registry,
                status=status.value if status else None,
            )
    typer.echo(
        f"replayed {counted(replayed, 'delivery', 'deliveries')}: "
        "run `ledger-pipeline deliver` to send them"
    )


@deliveries_app.command("skip")
def deliveries_skip(
    delivery_ids: Annotated[
        list[int],
        typer.Argument(
            metavar="ID...", min=1, max=MAX_DELIVERY_ID, help="Delivery ids (see `list`)."
        ),
    ],
) -> None:
    """Give up on pending or dead deliveries: they are not sent, and the later versions of
    their order go out without them."""
    with user_errors(), open_store() as store:
        skipped = DeliveryStore(store).skip(delivery_ids)
    already = len(set(delivery_ids)) - skipped
    typer.echo(
        f"skipped {counted(skipped, 'delivery', 'deliveries')}"
        + (f" ({already} skipped already)" if already else "")
    )


def report_lines(report: DeliveryPassReport) -> list[str]:
    """What `deliver` prints: the totals, then per registry, then the slowest endpoints."""
    totals = report.totals
    lines = [
        f"sent {totals.sent} in {report.batches} batches in {report.seconds:.1f} s: "
        f"{totals.succeeded} succeeded, {totals.retried} retried, {totals.dead} dead"
        + (f", {totals.gone} gone (registry disabled)" if totals.gone else "")
        + (f", {totals.lost} lost leases" if totals.lost else "")
    ]
    if report.stopped_by_budget:
        lines.append("stopped by the time budget: more deliveries may be due")
    for name, counts in sorted(report.registries.items()):
        lines.append(
            f"  {name}: sent {counts.sent}, succeeded {counts.succeeded}, "
            f"retried {counts.retried}, dead {counts.dead}"
            + (f", gone {counts.gone}" if counts.gone else "")
            + (f"; last failure: {counts.last_failure}" if counts.last_failure else "")
        )
    slowest = report.slowest_endpoints()
    if slowest:
        lines.append("slowest endpoints:")
        for latency in slowest:
            lines.append(
                f"  {latency.host}: mean {latency.mean_ms} ms, max {latency.max_ms} ms "
                f"over {counted(latency.attempts, 'attempt', 'attempts')}"
            )
    return lines


def _delivery_line(delivery: Delivery) -> str:
    line = (
        f"{delivery.id} {delivery.registry} order {delivery.order_id} v{delivery.order_version} "
        f"{delivery.status}, {counted(delivery.attempts, 'attempt', 'attempts')}"
    )
    if delivery.status == "pending":
        line += f", next {moment_text(delivery.next_attempt_at)}"
    if delivery.last_error:
        line += f", last: {delivery.last_error}"
    return line


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
