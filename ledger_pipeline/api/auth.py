"""Who may ask: every path but `/health` and the docs needs an API key, sent as
`Authorization: Bearer lpk_<id>_<secret>`. A read key gets summaries and reports; a manage key
also changes registries and deliveries. No key, a malformed, unknown or revoked key: 401. A
read key on a manage path: 403.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger_pipeline.api.errors import ApiError
from ledger_pipeline.errors import ApiKeyError
from ledger_pipeline.storage.api_keys import MANAGE, READ, ApiKey, ApiKeyStore

logger = logging.getLogger(__name__)

_CHALLENGE = {"WWW-Authenticate": "Bearer"}

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    bearerFormat="lpk_<id>_<secret>",
    description="An API key made by `ledger-pipeline api-key create --scope read|manage`.",
)


def require(scope: str) -> Callable[..., object]:
    """A dependency that lets a request through with a key allowing `scope`, and returns it."""

    async def authenticated(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> ApiKey:
        if credentials is None:
            raise ApiError(
                401,
                "unauthorized",
                "send an API key as Authorization: Bearer <key>; make one with "
                "`ledger-pipeline api-key create`",
                _CHALLENGE,
            )
        keys = ApiKeyStore(request.app.state.store)
        try:
            api_key = await run_in_threadpool(keys.authenticate, credentials.credentials)
        except ApiKeyError as error:
            raise ApiError(401, "unauthorized", str(error), _CHALLENGE) from None

        if not api_key.allows(scope):
            logger.info(
                "API key %s (%s) refused on %s", api_key.id, api_key.scope, request.url.path
            )
            raise ApiError(
                403,
                "forbidden",
                f"API key {api_key.id} has the {api_key.scope} scope; this needs a key with the "
                f"{scope} scope",
            )
        request.state.api_key_id = api_key.id
        return api_key

    return authenticated


ReadKey = Annotated[ApiKey, Depends(require(READ))]
ManageKey = Annotated[ApiKey, Depends(require(MANAGE))]
