"""Registries: what a valid one is, which entries it takes, and how they are stored and changed."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ledger_pipeline.core.posting import COLUMNS, TOTALS
from ledger_pipeline.core.registry import (
    DEFAULT_TOTALS,
    Registry,
    matches,
    parse_since,
    registry_definitions,
)
from ledger_pipeline.errors import RegistryError, UnknownRegistry
from ledger_pipeline.storage import tables
from ledger_pipeline.storage.registries import RegistryChange, RegistryStore
from ledger_pipeline.storage.store import LedgerStore
from ledger_pipeline_tests.test_payloads import entry

NOW = dt.datetime(2024, 11, 15, 8, 0, tzinfo=dt.UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
ACCOUNT_CHOICES = (
    "cash, customer_receivable, reseller_receivable, deferred_revenue, revenue, tax, "
    "commission, commission_payable"
)


def registry(**fields) -> Registry:
    return Registry(**{"name": "books", "url": "https://books.example/hooks", **fields})


# What a valid registry is


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"name": "Books"},
            "registry name 'Books' is not allowed: use 1 to 63 characters of a-z, 0-9, '_' and "
            "'-', starting with a letter or a digit",
        ),
        (
            {"name": "-books"},
            "registry name '-books' is not allowed: use 1 to 63 characters of a-z, 0-9, '_' and "
            "'-', starting with a letter or a digit",
        ),
        (
            {"name": "b" * 64},
            f"registry name '{'b' * 64}' is not allowed: use 1 to 63 characters of a-z, 0-9, "
            "'_' and '-', starting with a letter or a digit",
        ),
        (
            {"url": "ftp://books.example/hooks"},
            "url 'ftp://books.example/hooks' is not allowed: use an http:// or https:// URL with "
            "a host",
        ),
        (
            {"url": "https:///hooks"},
            "url 'https:///hooks' is not allowed: use an http:// or https:// URL with a host",
        ),
        (
            {"url": "https://books.example:port/"},
            "url 'https://books.example:port/' is not allowed: use an http:// or https:// URL "
            "with a host",
        ),
        (
            {"url": "https://ops:hunter2@books.example/hooks"},
            "url 'https://***@books.example/hooks' is not allowed: it holds a user name or "
            "password, which would be shown wherever the URL is; give it without them "
            "(receivers check the signature instead)",
        ),
        (
            {"url": "ftp://ops:hunter2@books.example:port/"},
            "url 'ftp://***@books.example:port/' is not allowed: use an http:// or https:// URL "
            "with a host",
        ),
        ({"destinations": "Krno"}, "destinations must be a list, not 'Krno'"),
        ({"destinations": ("Krno", "")}, "destination '' is not allowed: use a non-empty name"),
        ({"destinations": ("Krno", "Krno")}, "destination 'Krno' is given twice"),
        (
            {"entry_types": ("cash", "sales")},
            f"unknown entry type 'sales': choose from {ACCOUNT_CHOICES}",
        ),
        (
            {"group_by": ("colour",)},
            f"unknown group-by column 'colour': choose from {', '.join(COLUMNS)}",
        ),
        ({"group_by": ("product", "product")}, "group-by column 'product' is given twice"),
        (
            {"group_by": ("product, order_channel",)},
            "unknown group-by column 'product, order_channel': give each group-by column on its "
            "own (repeat the option, or one list item each): product, order_channel",
        ),
        ({"totals": ("profit",)}, f"unknown total 'profit': choose from {', '.join(TOTALS)}"),
        ({"totals": ("debit", "debit")}, "total 'debit' is given twice"),
        ({"include_test": "yes"}, "include_test 'yes' is not allowed: use true or false"),
        ({"enabled": 1}, "enabled 1 is not allowed: use true or false"),
        (
            {"since": dt.datetime(2024, 11, 15)},
            "since 2024-11-15T00:00:00 is not allowed: use a date and time with a time zone",
        ),
    ],
)
def test_a_bad_field_is_refused_with_a_message_naming_it(fields, message):
    with pytest.raises(RegistryError) as raised:
        registry(**fields)

    assert str(raised.value) == message


@pytest.mark.parametrize(
    "secret",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no prefix
        "whsec_not base64!",
        "whsec_" + base64.b64encode(bytes(23)).decode(),  # 23 bytes: too short
    ],
)
def test_a_bad_secret_is_refused_without_showing_it(secret):
    with pytest.raises(RegistryError) as raised:
        registry(secret=secret)

    assert str(raised.value) == (
        "the secret is not allowed: use 'whsec_' followed by the base64 of at least 24 random bytes"
    )
    assert secret not in str(raised.value)


def test_a_given_secret_of_24_bytes_is_kept():
    assert registry(secret=SECRET).secret == SECRET


def test_a_secret_is_generated_from_32_random_bytes_when_none_is_given():
    first, second = registry(), registry()

    assert first.secret.startswith("whsec_")
    assert len(base64.b64decode(first.secret.removeprefix("whsec_"), validate=True)) == 32
    assert first.secret != second.secret


def test_the_secret_is_not_in_the_repr():
    made = registry(secret=SECRET)
    made = replace(made, previous_secret=OTHER_SECRET, previous_secret_expires_at=NOW)

    assert SECRET not in repr(made)
    assert OTHER_SECRET not in repr(made)
    assert "books" in repr(made)


def test_defaults_take_everything_but_test_orders_and_sum_debit_and_credit():
    made = registry(created_at=NOW)

    assert made.destinations == ()
    assert made.entry_types == ()
    assert made.group_by == ()
    assert made.totals == DEFAULT_TOTALS == ("debit", "credit")
    assert made.include_test is False
    assert made.enabled is True
    assert made.since == NOW
    assert made.updated_at == NOW


def test_empty_totals_take_the_default_debit_and_credit():
    assert registry(totals=()).totals == ("debit", "credit")


def test_sets_are_kept_in_a_fixed_order_and_group_by_in_the_given_order():
    made = registry(
        destinations=["Tokyo", "Krno"],
        entry_types=["tax", "cash"],
        totals=["credit", "quantity"],
        group_by=["product", "destination"],
    )

    assert made.destinations == ("Krno", "Tokyo")
    assert made.entry_types == ("cash", "tax")
    assert made.totals == ("quantity", "credit")
    assert made.group_by == ("product", "destination")


def test_a_previous_secret_signs_until_it_expires():
    made = registry(
        secret=SECRET,
        previous_secret=OTHER_SECRET,
        previous_secret_expires_at=NOW + dt.timedelta(hours=24),
    )

    assert made.signing_secrets(NOW) == (SECRET, OTHER_SECRET)
    assert made.signing_secrets(NOW + dt.timedelta(hours=24)) == (SECRET,)


# Which entries a registry takes


def test_a_registry_takes_only_its_destinations():
    made = registry(destinations=("Krno",))

    assert matches(made, entry(destination="Krno"))
    assert not matches(made, entry(destination="Tokyo"))


def test_a_registry_takes_only_its_entry_types():
    made = registry(entry_types=("cash",))

    assert matches(made, entry(account="cash"))
    assert not matches(made, entry(account="tax"))


def test_test_orders_are_left_out_unless_included():
    assert not matches(registry(), entry(test=True))
    assert matches(registry(include_test=True), entry(test=True))
    assert matches(registry(), entry(test=False))


# Since


def test_since_of_a_date_is_its_midnight_in_the_ledgers_time_zone():
    tokyo = ZoneInfo("Asia/Tokyo")

    assert parse_since("2024-11-15", tokyo) == dt.datetime(2024, 11, 15, tzinfo=tokyo)
    assert parse_since(dt.date(2024, 11, 15), tokyo) == dt.datetime(2024, 11, 15, tzinfo=tokyo)
    assert parse_since("2024-11-15T09:00:00", tokyo) == dt.datetime(2024, 11, 15, 9, tzinfo=tokyo)
    assert parse_since("2024-11-15T09:00:00Z", tokyo) == dt.datetime(2024, 11, 15, 9, tzinfo=dt.UTC)


def test_since_that_is_no_date_is_refused():
    with pytest.raises(RegistryError) as raised:
        parse_since("yesterday", ZoneInfo("UTC"))

    assert str(raised.value) == (
        "since 'yesterday' is not allowed: use a date (YYYY-MM-DD) or an ISO 8601 date and time"
    )


def test_since_shaped_like_a_date_says_which_part_is_wrong():
    with pytest.raises(RegistryError) as raised:
        parse_since("2017-13-01", ZoneInfo("UTC"))

    assert str(raised.value) == (
        "since '2017-13-01' is not allowed (month must be in 1..12): use a date (YYYY-MM-DD) or "
        "an ISO 8601 date and time"
    )


# Registry files


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"books": []},
            "a registry file is a list of registries, or a mapping with the one key "
            "'registries': found the keys books",
        ),
        (
            "books",
            "a registry file is a list of registries, or a mapping with the one key "
            "'registries': found str",
        ),
        (["books"], "registry 1 in the file is not a mapping of fields"),
        (
            [{"name": "books", "url": "https://b.example", "colour": "red"}],
            "registry 1 in the file: unknown field 'colour': choose from name, url, "
            "destinations, entry_types, group_by, totals, include_test, since, enabled, secret",
        ),
        ([{"name": "books"}], "registry 1 in the file has no url"),
        (
            [
                {"name": "books", "url": "https://b.example"},
                {"name": "books", "url": "https://c.example"},
            ],
            "registry 'books' is in the file twice",
        ),
    ],
)
def test_a_malformed_registry_file_is_refused(document, message):
    with pytest.raises(RegistryError) as raised:
        registry_definitions(document, ZoneInfo("UTC"))

    assert str(raised.value) == message


def test_a_registry_file_may_wrap_its_list_in_registries():
    listed = [{"name": "books", "url": "https://b.example", "since": dt.date(2024, 11, 1)}]

    assert registry_definitions({"registries": listed}, ZoneInfo("UTC")) == [
        {
            "name": "books",
            "url": "https://b.example",
            "since": dt.datetime(2024, 11, 1, tzinfo=ZoneInfo("UTC")),
        }
    ]


def test_a_field_set_to_null_in_a_registry_file_is_left_out():
    listed = [{"name": "books", "url": "https://b.example", "group_by": None, "enabled": None}]

    assert registry_definitions(listed, ZoneInfo("UTC")) == [
        {"name": "books", "url": "https://b.example"}
    ]


# Storage


@pytest.fixture
def registries(database_url):
    with LedgerStore(database_url) as store:
        yield RegistryStore(store)


def stored_rows(registries: RegistryStore) -> list[tuple]:
    with registries._engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                sa.select(tables.registries).order_by(tables.registries.c.name)
            )
        ]


def test_a_created_registry_reads_back_equal(registries):
    made = registry(
        destinations=("Krno",),
        entry_types=("cash", "revenue"),
        group_by=("product", "product_tags"),
        totals=("quantity", "debit"),
        include_test=True,
        since=dt.datetime(2024, 11, 1, tzinfo=dt.UTC),
        secret=SECRET,
        created_at=NOW,
    )

    registries.create(made)

    assert registries.get("books") == made
    assert registries.list() == [made]


def test_creating_a_registry_of_a_taken_name_changes_nothing(registries):
    registries.create(registry(created_at=NOW))
    before = stored_rows(registries)

    with pytest.raises(RegistryError) as raised:
        registries.create(registry(url="https://other.example/"))

    assert str(raised.value) == (
        "registry 'books' already exists: change it with `ledger-pipeline registry update`"
    )
    assert stored_rows(registries) == before


def test_an_unknown_registry_is_an_error(registries):
    with pytest.raises(UnknownRegistry) as raised:
        registries.get("nope")

    assert str(raised.value) == "unknown registry 'nope': see `ledger-pipeline registry list`"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"url": "mailto:books@example.com"},
            "url 'mailto:books@example.com' is not allowed: "
            "use an http:// or https:// URL with a host",
        ),
        (
            {"group_by": ("colour",)},
            f"unknown group-by column 'colour': choose from {', '.join(COLUMNS)}",
        ),
        (
            {"name": "ledger"},
            "field 'name' cannot be updated: choose from url, destinations, "
            "entry_types, group_by, totals, include_test, since, enabled, secret",
        ),
    ],
)
def test_a_refused_update_changes_nothing(registries, changes, message):
    registries.create(registry(created_at=NOW))
    before = stored_rows(registries)

    with pytest.raises(RegistryError) as raised:
        registries.update("books", **changes)

    assert str(raised.value) == message
    assert stored_rows(registries) == before


def test_an_update_changes_only_the_given_fields(registries):
    registries.create(registry(group_by=("product",), destinations=("Krno",), created_at=NOW))
    later = NOW + dt.timedelta(hours=1)

    updated = registries.update("books", now=later, group_by=("destination", "date"))

    assert updated.group_by == ("destination", "date")
    assert updated.destinations == ("Krno",)
    assert updated.updated_at == later
    assert updated.created_at == NOW
    assert registries.get("books") == updated


def test_an_update_that_changes_nothing_keeps_updated_at(registries):
    registries.create(registry(group_by=("product",), created_at=NOW))

    updated = registries.update("books", now=NOW + dt.timedelta(hours=1), group_by=("product",))

    assert updated.updated_at == NOW


def test_disable_and_enable_switch_a_registry(registries):
    registries.create(registry(created_at=NOW))

    assert registries.disable("books").enabled is False
    assert registries.get("books").enabled is False
    assert registries.enable("books").enabled is True
    assert registries.get("books").enabled is True


def test_a_deleted_registry_is_gone_and_the_others_stay(registries):
    registries.create(registry(created_at=NOW))
    registries.create(registry(name="audit", created_at=NOW))

    registries.delete("books")

    assert [made.name for made in registries.list()] == ["audit"]
    with pytest.raises(UnknownRegistry):
        registries.delete("books")


def test_a_rotated_secret_keeps_the_previous_one_valid_for_24_hours(registries):
    registries.create(registry(secret=SECRET, created_at=NOW))
    rotated_at = NOW + dt.timedelta(days=3)

    rotated = registries.rotate_secret("books", now=rotated_at)

    stored = registries.get("books")
    assert stored == rotated
    assert stored.secret not in (SECRET, None)
    assert stored.previous_secret == SECRET
    assert stored.previous_secret_expires_at == rotated_at + dt.timedelta(hours=24)
    assert stored.secret_rotated_at == rotated_at
    assert stored.signing_secrets(rotated_at + dt.timedelta(hours=23)) == (stored.secret, SECRET)
    assert stored.signing_secrets(rotated_at + dt.timedelta(hours=24)) == (stored.secret,)


def test_a_new_secret_given_to_update_is_a_rotation(registries):
    registries.create(registry(secret=SECRET, created_at=NOW))

    updated = registries.update("books", now=NOW, secret=OTHER_SECRET)

    assert updated.secret == OTHER_SECRET
    assert updated.previous_secret == SECRET
    assert updated.previous_secret_expires_at == NOW + dt.timedelta(hours=24)


# Apply


FILE = [
    {
        "name": "books",
        "url": "https://books.example/hooks",
        "group_by": ["product", "product_tags"],
        "totals": ["debit", "credit", "quantity"],
        "since": dt.date(2024, 11, 1),
    },
    {"name": "audit", "url": "https://audit.example/", "include_test": True, "secret": SECRET},
]


def test_apply_creates_the_registries_of_a_file(registries):
    changes = registries.apply(FILE, now=NOW)

    assert [(change.name, change.action, change.secret_generated) for change in changes] == [
        ("books", "created", True),
        ("audit", "created", False),
    ]
    books = registries.get("books")
    assert books.group_by == ("product", "product_tags")
    assert books.totals == ("quantity", "debit", "credit")
    assert books.since == dt.datetime(2024, 11, 1, tzinfo=dt.UTC)
    assert registries.get("audit").secret == SECRET


def test_applying_a_file_again_changes_nothing(registries):
    registries.apply(FILE, now=NOW)
    before = stored_rows(registries)

    changes = registries.apply(FILE, now=NOW + dt.timedelta(hours=1))

    assert [(change.name, change.action) for change in changes] == [
        ("books", "unchanged"),
        ("audit", "unchanged"),
    ]
    assert stored_rows(registries) == before


def test_apply_reports_the_fields_it_changed(registries):
    registries.apply(FILE, now=NOW)
    changed_file = [{**FILE[0], "url": "https://books.example/v2", "totals": ["debit"]}, FILE[1]]

    changes = registries.apply(changed_file, now=NOW + dt.timedelta(hours=1))

    assert changes[0] == RegistryChange(
        "books", "updated", ("url", "totals"), registry=registries.get("books")
    )
    assert changes[1].action == "unchanged"
    assert registries.get("books").updated_at == NOW + dt.timedelta(hours=1)


def test_a_field_left_out_of_the_file_takes_its_default(registries):
    registries.apply(FILE, now=NOW)

    changes = registries.apply([{"name": "books", "url": "https://books.example/hooks"}])

    assert changes[0].fields == ("group_by", "totals", "since")
    books = registries.get("books")
    assert (books.group_by, books.totals, books.since) == ((), ("debit", "credit"), NOW)


def test_apply_leaves_enabled_and_the_secret_alone_when_the_file_does(registries):
    registries.apply(FILE, now=NOW)
    registries.disable("books")
    secret = registries.get("books").secret

    changes = registries.apply(FILE)

    assert changes[0].action == "unchanged"
    assert registries.get("books").enabled is False
    assert registries.get("books").secret == secret


def test_apply_leaves_registries_not_in_the_file_alone(registries):
    other = registries.create(registry(name="other", created_at=NOW))

    registries.apply(FILE, now=NOW)

    assert registries.get("other") == other
    assert [made.name for made in registries.list()] == ["audit", "books", "other"]


def test_a_file_with_one_bad_registry_changes_nothing(registries):
    registries.create(registry(name="other", created_at=NOW))
    before = stored_rows(registries)
    bad_file = [FILE[0], {"name": "audit", "url": "https://audit.example/", "totals": ["profit"]}]

    with pytest.raises(RegistryError) as raised:
        registries.apply(bad_file)

    assert str(raised.value) == (
        f"registry 'audit': unknown total 'profit': choose from {', '.join(TOTALS)}"
    )
    assert stored_rows(registries) == before
