"""`/deliveries`: webhook deliveries' state and attempts, and replaying or skipping one, for
keys with the manage scope (the `ledger-pipeline deliveries` verbs over HTTP).

A delivery's body is never returned: it is the ledger_summary, which the summary path serves.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ledger_pipeline.api.auth import ManageKey
from ledger_pipeline.api.errors import ApiError, responses
from ledger_pipeline.api.models import (
    AttemptView,
    DeliveryDetailView,
    DeliveryQuery,
    DeliveryView,
)
from ledger_pipeline.api.reporting import unknown_registry
from ledger_pipeline.errors import DeliveryError, UnknownRegistry
from ledger_pipeline.storage.deliveries import MAX_DELIVERY_ID, DeliveryDetail, DeliveryStore
from ledger_pipeline.storage.store import LedgerStore

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/deliveries", tags=["deliveries"])

DeliveryId = Annotated[int, Path(ge=1, le=MAX_DELIVERY_ID, description="The delivery's id.")]
_ERRORS = responses(401, 403, 404, 409, 422, 503)


@router.get("", response_model=list[DeliveryView], responses=responses(401, 403, 404, 422, 503))
def list_deliveries(
    request: Request, query: Annotated[DeliveryQuery, Query()], api_key: ManageKey
) -> list[DeliveryView]:
    """Deliveries, newest first. Filtering on a registry that does not exist is a 404."""
    try:
        deliveries = _deliveries(request).list(
            status=query.status, registry=query.registry, limit=query.limit
        )
    except UnknownRegistry:
        raise unknown_registry(str(query.registry)) from None
    return [DeliveryView.of(delivery) for delivery in deliveries]


@router.get("/{delivery_id}", response_model=DeliveryDetailView, responses=_ERRORS)
def show_delivery(
    request: Request, delivery_id: DeliveryId, api_key: ManageKey
) -> DeliveryDetailView:
    """A delivery and every attempt at it."""
    return _detail(_get(request, delivery_id))


@router.post("/{delivery_id}/replay", response_model=DeliveryDetailView, responses=_ERRORS)
def replay_delivery(
    request: Request, delivery_id: DeliveryId, api_key: ManageKey
) -> DeliveryDetailView:
    """Make a dead, skipped or failing delivery due now, with a fresh series of tries. A
    succeeded delivery is not sent again (409)."""
    _get(request, delivery_id)
    try:
        replayed = _deliveries(request).replay([delivery_id])
    except DeliveryError as error:
        raise ApiError(409, "delivery_not_replayable", str(error)) from None
    if not replayed:
        raise _being_sent(delivery_id)
    logger.info("API key %s replayed delivery %d", api_key.id, delivery_id)
    return _detail(_get(request, delivery_id))


@router.post("/{delivery_id}/skip", response_model=DeliveryDetailView, responses=_ERRORS)
def skip_delivery(
    request: Request, delivery_id: DeliveryId, api_key: ManageKey
) -> DeliveryDetailView:
    """Give up on a pending or dead delivery: it is not sent, and no longer holds back the
    later versions of its order. A succeeded delivery cannot be skipped (409)."""
    _get(request, delivery_id)
    try:
        _deliveries(request).skip([delivery_id])
    except DeliveryError as error:
        raise ApiError(409, "delivery_not_skippable", str(error)) from None
    logger.info("API key %s skipped delivery %d", api_key.id, delivery_id)
    return _detail(_get(request, delivery_id))


def _deliveries(request: Request) -> DeliveryStore:
    store: LedgerStore = request.app.state.store
    return DeliveryStore(store)


def _get(request: Request, delivery_id: int) -> DeliveryDetail:
    try:
        return _deliveries(request).get(delivery_id)
    except DeliveryError:
        raise ApiError(
            404,
            "unknown_delivery",
            f"there is no delivery {delivery_id}: GET /deliveries lists them",
        ) from None


def _detail(detail: DeliveryDetail) -> DeliveryDetailView:
    return DeliveryDetailView(
        **DeliveryView.of(detail.delivery).model_dump(),
        attempts_made=[
            AttemptView(
                number=attempt.number,
                started_at=attempt.started_at,
                status_code=attempt.status_code,
                latency_ms=attempt.latency_ms,
                response_excerpt=attempt.response_excerpt,
                error=attempt.error,
                worker=attempt.worker,
            )
            for attempt in detail.attempts
        ],
    )


def _being_sent(delivery_id: int) -> ApiError:
    return ApiError(
        409,
        "delivery_being_sent",
        f"delivery {delivery_id} is being sent right now: look again in a moment",
    )
