"""`/reporting/webhook_registry/ledger_summary` and `.../ledger_report`: a registry's payloads
of a range of accounting dates, the same objects as `ledger-pipeline summary` and `report`.

Each takes `registry`, `from` and `to` in the query string (GET) or a JSON body (POST). `from`
after `to`, or a range longer than the API's maximum (`LEDGER_API_MAX_DAYS`), is a 422 that
says what to ask for instead; an unknown registry is a 404.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, Response

from ledger_pipeline.api.auth import ReadKey
from ledger_pipeline.api.errors import ApiError, responses
from ledger_pipeline.api.models import LedgerSummary, RangeQuery, ReportQuery, ReportRow
from ledger_pipeline.core.payloads import (
    ledger_summaries,
    report_columns,
    report_csv,
)
from ledger_pipeline.core.registry import Registry
from ledger_pipeline.errors import UnknownRegistry
from ledger_pipeline.storage.registries import RegistryStore
from ledger_pipeline.storage.registry_totals import RegistryTotalsStore
from ledger_pipeline.storage.store import LedgerStore

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/reporting/webhook_registry", tags=["reporting"])

_ERRORS = responses(401, 404, 422, 503)
_CSV = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}


@router.get(
    "/ledger_summary",
    response_model=list[LedgerSummary],
    responses=_ERRORS,
    summary="A registry's ledger summaries of a range of dates",
)
def get_ledger_summary(
    request: Request, query: Annotated[RangeQuery, Query()], api_key: ReadKey
) -> Response:
    """One summary per order event of the accounting dates `from`..`to` (both included) whose
    entries pass the registry's filters, in the order the events occurred. The registry's
    `since` and state do not apply here."""
    return _summaries(request, query, api_key.id)


@router.post(
    "/ledger_summary",
    response_model=list[LedgerSummary],
    responses=_ERRORS,
    summary="A registry's ledger summaries of a range of dates (JSON body)",
)
def post_ledger_summary(
    request: Request, query: Annotated[RangeQuery, Body()], api_key: ReadKey
) -> Response:
    """The same as the GET, with `registry`, `from` and `to` in a JSON body."""
    return _summaries(request, query, api_key.id)


@router.get(
    "/ledger_report",
    response_model=list[ReportRow],
    responses={**_ERRORS, **_CSV},
    summary="A registry's ledger report of a range of dates",
)
def get_ledger_report(
    request: Request, query: Annotated[ReportQuery, Query()], api_key: ReadKey
) -> Response:
    """One row per group of the registry's group-by columns and currency, with the registry's
    totals. A tag column gives one row per tag and one with no tag. `format=csv` gives CSV with
    a header (a null is empty, a flag true or false)."""
    return _report(request, query, api_key.id)


@router.post(
    "/ledger_report",
    response_model=list[ReportRow],
    responses={**_ERRORS, **_CSV},
    summary="A registry's ledger report of a range of dates (JSON body)",
)
def post_ledger_report(
    request: Request, query: Annotated[ReportQuery, Body()], api_key: ReadKey
) -> Response:
    """The same as the GET, with `registry`, `from`, `to` and `format` in a JSON body."""
    return _report(request, query, api_key.id)


def _summaries(request: Request, query: RangeQuery, key_id: str) -> Response:
    started = time.perf_counter()
    store: LedgerStore = request.app.state.store
    _check_range(query, request.app.state.settings.max_days)
    registry = _registry(store, query.registry)

    # Limitation: the whole range is read into memory before the first byte goes out, so the
    # maximum range (LEDGER_API_MAX_DAYS) is also what bounds a request's memory.
    summaries = ledger_summaries(registry, store.entries(query.date_from, query.date_to))
    logger.info(
        "served %d summaries of registry %s, %s..%s, to API key %s in %.3f s",
        len(summaries),
        registry.name,
        query.date_from,
        query.date_to,
        key_id,
        time.perf_counter() - started,
    )
    return JSONResponse(summaries)


def _report(request: Request, query: ReportQuery, key_id: str) -> Response:
    started = time.perf_counter()
    store: LedgerStore = request.app.state.store
    _check_range(query, request.app.state.settings.max_days)
    registry = _registry(store, query.registry)

    rows = RegistryTotalsStore(store).report(registry, query.date_from, query.date_to)
    logger.info(
        "served a report of %d rows of registry %s, %s..%s, to API key %s in %.3f s",
        len(rows),
        registry.name,
        query.date_from,
        query.date_to,
        key_id,
        time.perf_counter() - started,
    )
    if query.format == "csv":
        header = [*report_columns(registry), *registry.totals]
        return Response(report_csv(header, rows), media_type="text/csv; charset=utf-8")
    return JSONResponse(rows)


def _check_range(query: RangeQuery, max_days: int) -> None:
    first, last = query.date_from, query.date_to
    if first > last:
        raise ApiError(
            422,
            "invalid_date_range",
            f"from {first} is after to {last}: give a from on or before the to",
        )
    days = (last - first).days + 1
    if days > max_days:
        raise ApiError(
            422,
            "date_range_too_long",
            f"from {first} to {last} is {days} days: ask for at most {max_days} days at a "
            "time, in several requests",
        )


def _registry(store: LedgerStore, name: str) -> Registry:
    try:
        return RegistryStore(store).get(name)
    except UnknownRegistry:
        raise unknown_registry(name) from None


def unknown_registry(name: str) -> ApiError:
    return ApiError(
        404,
        "unknown_registry",
        f"unknown registry {name!r}: check the name (a key with the manage scope lists the "
        "registries at GET /registries)",
    )
