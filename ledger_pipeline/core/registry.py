"""Registries: who receives which ledger entries, grouped how, at which URL.

A registry is one subscription of an accounting system to the ledger. Its filters
(destinations, entry types, test orders) choose entries; its group-by columns and totals shape
the `ledger_summary` and `ledger_report` payloads (see `ledger_pipeline.core.payloads`).

Choices made here, each pinned by a test in `test_registry.py`:

- An empty list of destinations or entry types takes every one. An empty list of totals takes
  `DEFAULT_TOTALS` (debit and credit), so that a report always says how much money moved.
- Destinations and entry types are sets: they are kept sorted (entry types in the order of the
  accounts), so that two definitions listing them in another order are the same registry.
  Group-by columns keep their order, since it orders a report's rows; totals follow `TOTALS`.
- A value given twice in one list is an error, not silently dropped.
- `since` (default: the creation time) and `enabled` concern delivery only; summaries and
  reports asked for on request cover any range of dates, whatever the registry's state.
- The secret is `whsec_` followed by the base64 of 32 random bytes unless one is given; a
  given one must decode to at least 24 bytes. It never appears in a repr or an error message.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from ledger_pipeline.core.posting import ACCOUNTS, COLUMNS, TOTALS, LedgerEntry
from ledger_pipeline.errors import RegistryError

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# The user name and password of a URL: from after the scheme to the last '@' before the path.
_USERINFO = re.compile(r"^([^:/?#]*://)[^/?#]*@")
DEFAULT_TOTALS = ("debit", "credit")
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of every secret, not a secret)
SECRET_BYTES = 32
MIN_SECRET_BYTES = 24
# How long the previous secret stays valid after a rotation, so receivers can switch over.
SECRET_OVERLAP = dt.timedelta(hours=24)

# The fields that say what a registry receives, as a definition (a YAML file) gives them.
DEFINITION_FIELDS = (
    "name",
    "url",
    "destinations",
    "entry_types",
    "group_by",
    "totals",
    "include_test",
    "since",
    "enabled",
    "secret",
)


@dataclass(frozen=True)
class Registry:
    """One subscription to the ledger; built only valid (else `RegistryError`).

    Args:
        name: unique, URL-safe: 1 to 63 of `a-z 0-9 _ -`, starting with a letter or digit.
        url: the http or https URL the payloads are sent to.
        destinations: the orders' destinations it takes; empty takes every one.
        entry_types: the accounts (of `ACCOUNTS`) it takes; empty takes every one.
        group_by: columns of `COLUMNS` its payloads are grouped by, in this order.
        totals: what its reports sum, of `TOTALS`; empty takes `DEFAULT_TOTALS`.
        include_test: whether entries of test orders are sent too.
        since: the aware moment from which posted events are delivered; default `created_at`.
        enabled: a disabled registry's deliveries wait until it is enabled again.
        secret: the `whsec_` signing secret; generated when not given.
        created_at, updated_at: default now.
        previous_secret, previous_secret_expires_at: the secret before the last rotation,
            valid until then.
    """

    name: str
    url: str
    destinations: tuple[str, ...] = ()
    entry_types: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ()
    totals: tuple[str, ...] = DEFAULT_TOTALS
    include_test: bool = False
    since: dt.datetime | None = None
    enabled: bool = True
    secret: str | None = field(default=None, repr=False)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_expires_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        created_at = _moment("created_at", self.created_at or _now())
        values = {
            "name": _name(self.name),
            "url": _url(self.url),
            "destinations": tuple(sorted(_unique("destination", self.destinations, None))),
            "entry_types": _in_order(_unique("entry type", self.entry_types, _ACCOUNT_NAMES)),
            "group_by": _unique("group-by column", self.group_by, COLUMNS),
            "totals": _in_order(_unique("total", self.totals, TOTALS)) or DEFAULT_TOTALS,
            "include_test": _flag("include_test", self.include_test),
            "since": _moment("since", self.since or created_at),
            "enabled": _flag("enabled", self.enabled),
            "secret": _secret(self.secret) if self.secret is not None else new_secret(),
            "created_at": created_at,
            "updated_at": _moment("updated_at", self.updated_at or created_at),
            "previous_secret": (
                _secret(self.previous_secret) if self.previous_secret is not None else None
            ),
            "previous_secret_expires_at": (
                _moment("previous_secret_expires_at", self.previous_secret_expires_at)
                if self.previous_secret_expires_at is not None
                else None
            ),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def secret_rotated_at(self) -> dt.datetime | None:
        """When the secret was last replaced (None if it never was)."""
        if self.previous_secret_expires_at is None:
            return None
        return self.previous_secret_expires_at - SECRET_OVERLAP

    def signing_secrets(self, now: dt.datetime | None = None) -> tuple[str, ...]:
        """The secrets a payload is signed with now: the current one, and the previous one
        until it expires."""
        now = now or _now()
        current = (self.secret,) if self.secret else ()
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and now < expires:
            return current + (self.previous_secret,)
        return current


def new_secret() -> str:
    """A new signing secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def matches(registry: Registry, entry: LedgerEntry) -> bool:
    """Whether the registry takes this entry: its destination, its account (entry type), and
    test orders only when the registry includes them."""
    if registry.destinations and entry.destination not in registry.destinations:
        return False
    if registry.entry_types and entry.account not in registry.entry_types:
        return False
    return registry.include_test or not entry.test


def changed_fields(before: Registry, after: Registry) -> tuple[str, ...]:
    """The definition fields whose values differ (`secret` included, never its value)."""
    return tuple(
        name for name in DEFINITION_FIELDS if getattr(before, name) != getattr(after, name)
    )


def parse_since(value: object, timezone: ZoneInfo) -> dt.datetime:
    """The moment a `since` value names: a date is its midnight in the ledger's time zone, a
    date and time without an offset is in that zone too.

    Args:
        value: a `datetime.date`, a `datetime.datetime`, or ISO 8601 text of either.
        timezone: the ledger's time zone.
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError as error:
            # Text shaped like a date fails on a part of it (a month 13): say which.
            reason = f" ({error})" if re.match(r"\d{4}-\d{2}-\d{2}", value.strip()) else ""
            raise RegistryError(
                f"since {value!r} is not allowed{reason}: use a date (YYYY-MM-DD) or an ISO "
                "8601 date and time"
            ) from None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=timezone)
    raise RegistryError(
        f"since {value!r} is not allowed: use a date (YYYY-MM-DD) or an ISO 8601 date and time"
    )


def registry_definitions(document: object, timezone: ZoneInfo) -> list[dict[str, object]]:
    """The registry definitions of a document (a parsed YAML file): a list of mappings, or a
    mapping with the one key `registries` holding that list.

    Each definition keeps the fields it gives, checked by name (`name` and `url` are required,
    no name twice), with `since` turned into a moment (see `parse_since`); a field set to null
    counts as left out. Values are checked when a `Registry` is built from them.
    """
    if isinstance(document, dict):
        if set(document) != {"registries"}:
            raise RegistryError(
                "a registry file is a list of registries, or a mapping with the one key "
                f"'registries': found the keys {', '.join(map(str, document))}"
            )
        document = document["registries"]
    if document is None:
        return []
    if not isinstance(document, list):
        raise RegistryError(
            "a registry file is a list of registries, or a mapping with the one key "
            f"'registries': found {type(document).__name__}"
        )

    definitions = []
    names: set[object] = set()
    for position, item in enumerate(document, start=1):
        if not isinstance(item, dict):
            raise RegistryError(f"registry {position} in the file is not a mapping of fields")
        # A field set to null (`group_by:` with nothing after it) is one left out.
        item = {key: value for key, value in item.items() if value is not None}
        unknown = [key for key in item if key not in DEFINITION_FIELDS]
        if unknown:
            raise RegistryError(
                f"registry {position} in the file: unknown field {unknown[0]!r}: choose from "
                f"{', '.join(DEFINITION_FIELDS)}"
            )
        for required in ("name", "url"):
            if required not in item:
                raise RegistryError(f"registry {position} in the file has no {required}")
        _name(item["name"])
        if item["name"] in names:
            raise RegistryError(f"registry {item['name']!r} is in the file twice")
        names.add(item["name"])

        definition = dict(item)
        if "since" in definition:
            definition["since"] = parse_since(definition["since"], timezone)
        definitions.append(definition)
    return definitions


REGISTRY_FIELDS = tuple(registry_field.name for registry_field in fields(Registry))

_ACCOUNT_NAMES = tuple(ACCOUNTS)
# Account names and totals share no name, so one table orders both.
_POSITIONS = {
    **{name: index for index, name in enumerate(_ACCOUNT_NAMES)},
    **{name: index for index, name in enumerate(TOTALS)},
}


# Validation


def _name(value: object) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise RegistryError(
            f"registry name {value!r} is not allowed: use 1 to 63 characters of a-z, 0-9, "
            "'_' and '-', starting with a letter or a digit"
        )
    return value


def _url(value: object) -> str:
    allowed = "use an http:// or https:// URL with a host"
    if not isinstance(value, str) or value != value.strip() or any(c.isspace() for c in value):
        raise RegistryError(f"url {_masked(value)!r} is not allowed: {allowed}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (a bad port raises ValueError here)
    except ValueError:
        raise RegistryError(f"url {_masked(value)!r} is not allowed: {allowed}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RegistryError(f"url {_masked(value)!r} is not allowed: {allowed}")
    if "@" in parts.netloc:
        # The URL is shown by `registry list`, the API and the delivery log: no place for a
        # password. The signature is what proves a delivery to its receiver.
        raise RegistryError(
            f"url {_masked(value)!r} is not allowed: it holds a user name or password, which "
            "would be shown wherever the URL is; give it without them (receivers check the "
            "signature instead)"
        )
    return value


def _masked(value: object) -> object:
    """A URL with what stands before an '@' of its host part (a user name, a password) hidden,
    so that an error message never repeats a password."""
    if not isinstance(value, str):
        return value
    return _USERINFO.sub(r"\1***@", value)


def _unique(what: str, values: object, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
    """The values as a tuple, each allowed (or, without `allowed`, a non-empty name), none
    given twice."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise RegistryError(f"{what}s must be a list, not {values!r}")
    seen: list[str] = []
    for value in values:
        if allowed is not None and value not in allowed:
            parts = [part.strip() for part in str(value).split(",")]
            if len(parts) > 1 and all(part in allowed for part in parts):
                raise RegistryError(
                    f"unknown {what} {value!r}: give each {what} on its own (repeat the "
                    f"option, or one list item each): {', '.join(parts)}"
                )
            raise RegistryError(f"unknown {what} {value!r}: choose from {', '.join(allowed)}")
        if allowed is None and (not isinstance(value, str) or not value.strip()):
            raise RegistryError(f"{what} {value!r} is not allowed: use a non-empty name")
        if value in seen:
            raise RegistryError(f"{what} {value!r} is given twice")
        seen.append(value)
    return tuple(seen)


def _in_order(values: tuple[str, ...]) -> tuple[str, ...]:
    """Entry types in the order of `ACCOUNTS`, totals in the order of `TOTALS`."""
    return tuple(sorted(values, key=_POSITIONS.__getitem__))


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise RegistryError(f"{name} {value!r} is not allowed: use true or false")
    return value


def _moment(name: str, value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        shown = value.isoformat() if isinstance(value, dt.date) else repr(value)
        raise RegistryError(f"{name} {shown} is not allowed: use a date and time with a time zone")
    return value


def _secret(value: object) -> str:
    """A given secret; the message never shows it."""
    problem = (
        f"the secret is not allowed: use {SECRET_PREFIX!r} followed by the base64 of at least "
        f"{MIN_SECRET_BYTES} random bytes"
    )
    if not isinstance(value, str) or not value.startswith(SECRET_PREFIX):
        raise RegistryError(problem)
    try:
        key = base64.b64decode(value.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise RegistryError(problem) from None
    if len(key) < MIN_SECRET_BYTES:
        raise RegistryError(problem)
    return value


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
