"""Every error the API answers has the body `{"error": {"code": ..., "message": ...}}`: the
code for a program, the message for a person, saying what was wrong and what to do.

`ApiError` is what a route raises; the handlers installed by `install_error_handlers` turn it,
the product's own errors, request validation errors and anything unexpected into that body.
A message never holds a secret, a key or a request body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger_pipeline.api.models import ErrorBody
from ledger_pipeline.errors import (
    ApiKeyError,
    LedgerError,
    RegistryError,
    StorageError,
    UnknownRegistry,
)

logger = logging.getLogger(__name__)

# The most validation problems one message lists.
MAX_PROBLEMS = 5

_NOT_JSON = "the body is not valid JSON: send a JSON object"
_LOCATIONS = {"query": "query parameter", "path": "path parameter", "body": "body field"}
_HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An answer other than success: an HTTP status, a code and a message for a person."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody.model_validate({"error": {"code": code, "message": message}})
    return JSONResponse(body.model_dump(), status_code=status, headers=dict(headers or {}))


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a route's error responses."""
    descriptions = {
        400: "The request cannot be served as asked; the message says what to change.",
        401: "No API key, or one that is malformed, unknown or revoked.",
        403: "The API key's scope does not allow this: it needs the manage scope.",
        404: "No such registry or delivery.",
        409: "It exists already, or is in a state that does not allow this.",
        422: "A parameter or body field is missing or not allowed; the message names it.",
        503: "The ledger's database cannot be reached; try again later.",
    }
    return {
        status: {"model": ErrorBody, "description": descriptions[status]} for status in statuses
    }


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(LedgerError, _ledger_error)
    app.add_exception_handler(sa.exc.SQLAlchemyError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(error.status, error.code, error.message, error.headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [_problem(detail) for detail in error.errors()]
    message = "; ".join(problems[:MAX_PROBLEMS])
    if len(problems) > MAX_PROBLEMS:
        message += f"; and {len(problems) - MAX_PROBLEMS} more"
    return error_response(422, "invalid_request", message)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "http_error")
    message = str(error.detail)
    if error.status_code == 400:
        # FastAPI's answer to a body it cannot decode; the same as a body that is not JSON.
        return error_response(422, "invalid_request", _NOT_JSON)
    if error.status_code == 404:
        message = f"there is no {request.url.path}: see /docs for the API's paths"
    elif error.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}: see /docs"
    return error_response(error.status_code, code, message, error.headers)


async def _ledger_error(request: Request, error: Exception) -> JSONResponse:
    """The product's own errors that a route did not turn into an `ApiError` itself."""
    if isinstance(error, UnknownRegistry):
        return error_response(404, "unknown_registry", str(error))
    if isinstance(error, RegistryError):
        return error_response(422, "invalid_registry", str(error))
    if isinstance(error, ApiKeyError):
        return error_response(401, "unauthorized", str(error), {"WWW-Authenticate": "Bearer"})
    if isinstance(error, StorageError):
        return _unavailable(error)
    logger.info("%s %s refused: %s", request.method, request.url.path, type(error).__name__)
    return error_response(422, "invalid_request", str(error))


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    return _unavailable(error)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path)
    return error_response(500, "internal_error", "the server failed; its log has the detail")


def _unavailable(error: Exception) -> JSONResponse:
    # The database's message may name hosts and tables: it goes to the log, not the client.
    logger.warning("the ledger database failed: %s", type(error).__name__, exc_info=True)
    return error_response(
        503,
        "database_unavailable",
        "the ledger's database cannot be reached; try again later",
        {"Retry-After": "5"},
    )


def _problem(detail: Mapping[str, Any]) -> str:
    """One validation problem as text: where, and what to do. The value sent is never shown
    (it may be a secret)."""
    location = _location(detail.get("loc", ()))
    kind = detail.get("type", "")
    if kind == "missing":
        return f"{location} is missing"
    if kind == "json_invalid":
        return _NOT_JSON
    if location == "the body" and kind in ("model_attributes_type", "dict_type", "model_type"):
        return "the body must be a JSON object, sent with Content-Type: application/json"
    if kind == "extra_forbidden":
        return f"{location} is not a field of this request: remove it"
    message = str(detail.get("msg", "not allowed")).removeprefix("Value error, ")
    return f"{location}: {message}"


def _location(loc: Sequence[Any]) -> str:
    if not loc:
        return "the request"
    where, *path = loc
    if where == "body" and not path:
        return "the body"
    name = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return f"{_LOCATIONS.get(where, str(where))} '{name.removeprefix('.')}'"
