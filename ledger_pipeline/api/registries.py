"""`/registries`: the `ledger-pipeline registry` verbs over HTTP, for keys with the manage scope.

A registry's secret is returned twice at most: when it is generated (create, apply) and when it
is rotated. `GET` never shows it; `PATCH` with a new secret rotates to it without echoing it.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from ledger_pipeline.api.auth import ManageKey
from ledger_pipeline.api.errors import ApiError, responses
from ledger_pipeline.api.models import (
    RegistryApplied,
    RegistryChanges,
    RegistryCreated,
    RegistryDefinition,
    RegistryFile,
    RegistryView,
    SecretRotated,
)
from ledger_pipeline.api.reporting import unknown_registry
from ledger_pipeline.core.registry import NAME_PATTERN, Registry, parse_since
from ledger_pipeline.errors import RegistryError, UnknownRegistry
from ledger_pipeline.storage.registries import CREATED, RegistryStore
from ledger_pipeline.storage.store import LedgerStore

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/registries", tags=["registries"])

NamePath = Annotated[
    str,
    Path(
        pattern=f"^{NAME_PATTERN.pattern}$",
        description="The registry's name.",
        examples=["books"],
    ),
]
_ERRORS = responses(401, 403, 404, 422, 503)


@router.get("", response_model=list[RegistryView], responses=responses(401, 403, 503))
def list_registries(request: Request, api_key: ManageKey) -> list[RegistryView]:
    """Every registry, by name; never a secret."""
    return [RegistryView.of(registry) for registry in _registries(request).list()]


@router.post(
    "",
    status_code=201,
    response_model=RegistryCreated,
    responses=responses(401, 403, 409, 422, 503),
)
def create_registry(
    request: Request, definition: RegistryDefinition, api_key: ManageKey
) -> RegistryCreated:
    """Create a registry. A generated secret is in the answer, this once."""
    registries = _registries(request)
    fields = definition.model_dump(exclude_none=True)
    if "since" in fields:
        fields["since"] = parse_since(fields["since"], registries.timezone)
    registry = Registry(**_tuples(fields))

    try:
        registries.create(registry)
    except RegistryError:
        if _exists(registries, registry.name):
            raise ApiError(
                409,
                "registry_exists",
                f"registry {registry.name!r} already exists: change it with "
                f"PATCH /registries/{registry.name}",
            ) from None
        raise
    logger.info("API key %s created registry %s", api_key.id, registry.name)
    secret = registry.secret if definition.secret is None else None
    return RegistryCreated(**RegistryView.of(registry).model_dump(), secret=secret)


@router.post(
    "/apply",
    response_model=list[RegistryApplied],
    responses=responses(401, 403, 422, 503),
)
def apply_registries(
    request: Request, document: RegistryFile, api_key: ManageKey
) -> list[RegistryApplied]:
    """Create or update registries so that they equal the definitions, all or none (as
    `ledger-pipeline registry apply`). Registries not named are left alone."""
    definitions = [definition.model_dump(exclude_unset=True) for definition in document.registries]
    changes = _registries(request).apply(definitions)
    logger.info("API key %s applied %d registries", api_key.id, len(changes))
    return [
        RegistryApplied(
            name=change.name,
            action=change.action,
            fields=list(change.fields),
            secret=(
                change.registry.secret
                if change.action == CREATED and change.secret_generated and change.registry
                else None
            ),
        )
        for change in changes
    ]


@router.get("/{name}", response_model=RegistryView, responses=_ERRORS)
def show_registry(request: Request, name: NamePath, api_key: ManageKey) -> RegistryView:
    """One registry; never its secret."""
    return RegistryView.of(_get(request, name))


@router.patch("/{name}", response_model=RegistryView, responses=_ERRORS)
def update_registry(
    request: Request, name: NamePath, changes: RegistryChanges, api_key: ManageKey
) -> RegistryView:
    """Change the fields given; the others stay. A new secret is a rotation (the old one stays
    valid for 24 hours) and is not echoed."""
    registries = _registries(request)
    fields = changes.model_dump(exclude_none=True)
    if not fields:
        _get(request, name)  # an unknown registry is a 404 first
        raise RegistryError("nothing to update: give a field to change")
    if "since" in fields:
        fields["since"] = parse_since(fields["since"], registries.timezone)
    try:
        registry = registries.update(name, **_tuples(fields))
    except UnknownRegistry:
        raise unknown_registry(name) from None
    logger.info("API key %s updated registry %s", api_key.id, name)
    return RegistryView.of(registry)


@router.delete("/{name}", status_code=204, response_class=Response, responses=_ERRORS)
def delete_registry(request: Request, name: NamePath, api_key: ManageKey) -> Response:
    """Delete a registry."""
    try:
        _registries(request).delete(name)
    except UnknownRegistry:
        raise unknown_registry(name) from None
    logger.info("API key %s deleted registry %s", api_key.id, name)
    return Response(status_code=204)


@router.post("/{name}/enable", response_model=RegistryView, responses=_ERRORS)
def enable_registry(request: Request, name: NamePath, api_key: ManageKey) -> RegistryView:
    """Enable a registry: its waiting deliveries go out again, in order."""
    try:
        registry = _registries(request).enable(name)
    except UnknownRegistry:
        raise unknown_registry(name) from None
    logger.info("API key %s enabled registry %s", api_key.id, name)
    return RegistryView.of(registry)


@router.post("/{name}/disable", response_model=RegistryView, responses=_ERRORS)
def disable_registry(request: Request, name: NamePath, api_key: ManageKey) -> RegistryView:
    """Disable a registry: its deliveries wait until it is enabled again."""
    try:
        registry = _registries(request).disable(name)
    except UnknownRegistry:
        raise unknown_registry(name) from None
    logger.info("API key %s disabled registry %s", api_key.id, name)
    return RegistryView.of(registry)


@router.post("/{name}/rotate-secret", response_model=SecretRotated, responses=_ERRORS)
def rotate_secret(request: Request, name: NamePath, api_key: ManageKey) -> SecretRotated:
    """Give a registry a new, generated secret, in the answer this once; the previous one
    stays valid for 24 hours so that the receiver can switch over."""
    try:
        registry = _registries(request).rotate_secret(name)
    except UnknownRegistry:
        raise unknown_registry(name) from None
    assert registry.secret is not None and registry.previous_secret_expires_at is not None
    logger.info("API key %s rotated the secret of registry %s", api_key.id, name)
    return SecretRotated(
        name=registry.name,
        secret=registry.secret,
        previous_secret_valid_until=registry.previous_secret_expires_at,
    )


def _registries(request: Request) -> RegistryStore:
    store: LedgerStore = request.app.state.store
    return RegistryStore(store)


def _get(request: Request, name: str) -> Registry:
    try:
        return _registries(request).get(name)
    except UnknownRegistry:
        raise unknown_registry(name) from None


def _exists(registries: RegistryStore, name: str) -> bool:
    try:
        registries.get(name)
    except UnknownRegistry:
        return False
    return True


def _tuples(fields: dict[str, Any]) -> dict[str, Any]:
    """Lists as the tuples a `Registry` holds."""
    return {
        name: tuple(value) if isinstance(value, list) else value for name, value in fields.items()
    }
