"""Personal data in the input never reaches the database, the logs or the command's output."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from ledger_pipeline.cli import app
from ledger_pipeline_tests.factories import raw_event

CUSTOMER = {
    "name": "Zelda Quibblethorpe",
    "email": "zelda.quibblethorpe@example.org",
    "phone": "+43 660 555 0199",
}
GUEST = {"name": "Xavier Plumtree", "email": "xavier@plumtree.example", "phone": "+1 202 555 0147"}
RESELLER_CONTACT = {
    "name": "Yolanda Fizzwick",
    "email": "yolanda.fizzwick@citytours.example",
    "phone": "+44 20 7946 0958",
}
ORDER_NOTE = "Allergic to hazelnuts, ask for Zelda"
ITEM_NOTE = "Needs the wheelchair ramp at gate 3"
RESELLER_NOTE = "Call Yolanda after 6pm"

PERSONAL_DATA = [
    *CUSTOMER.values(),
    *GUEST.values(),
    *RESELLER_CONTACT.values(),
    ORDER_NOTE,
    ITEM_NOTE,
    RESELLER_NOTE,
    # Parts that would show even if a value were cut short.
    "Quibblethorpe",
    "Plumtree",
    "Fizzwick",
    "hazelnuts",
    "wheelchair",
    "555 0199",
]


def with_personal_data(event: dict) -> dict:
    """The event with contact data and notes at order level, item level and in the reseller."""
    order = event["order"]
    order["customer"] = dict(CUSTOMER)
    order["contact_name"] = CUSTOMER["name"]
    order["notes"] = ORDER_NOTE
    for item in order["items"]:
        item["guest"] = dict(GUEST)
        item["lead_traveller"] = GUEST["name"]
        item["notes"] = ITEM_NOTE
    order["reseller"] = {
        "id": "r-17",
        "name": "City Tours Ltd",
        "collects_payment": True,
        "contact": dict(RESELLER_CONTACT),
        "contact_email": RESELLER_CONTACT["email"],
        "notes": RESELLER_NOTE,
    }
    event["metadata"] = {"booked_by": CUSTOMER["email"], "phone": CUSTOMER["phone"]}
    return event


def input_lines() -> list[str]:
    confirmed = with_personal_data(raw_event("evt-1", "order-1", 1))
    updated = with_personal_data(
        raw_event("evt-2", "order-1", 2, "updated", "2024-11-15T12:00:00+01:00", retail=2600)
    )
    stale = with_personal_data(raw_event("evt-0", "order-1", 1))
    malformed = with_personal_data(raw_event("evt-bad", "order-2", 1))
    malformed["order"]["items"][0]["quantity"] = -1
    other = with_personal_data(raw_event("evt-3", "order-3", 1))
    not_json = json.dumps(with_personal_data(raw_event("evt-4", "order-4")))[:-1]
    return [json.dumps(e) for e in (confirmed, updated, stale, malformed, other)] + [not_json]


def dump_of_every_table(database_url: str) -> str:
    engine = sa.create_engine(database_url)
    reflected = sa.MetaData()
    reflected.reflect(engine)
    with engine.connect() as connection:
        dump = {
            table.name: [repr(tuple(row)) for row in connection.execute(sa.select(table))]
            for table in reflected.sorted_tables
        }
    engine.dispose()
    return json.dumps(dump, ensure_ascii=False)


def test_personal_data_is_neither_stored_nor_logged_nor_printed(
    database_url, monkeypatch, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy's statements and their parameters too (it keeps its loggers quiet otherwise).
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.delenv("LEDGER_TIMEZONE", raising=False)
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(input_lines()) + "\n", encoding="utf-8")
    runner = CliRunner()

    imported = runner.invoke(app, ["--log-level", "debug", "import", str(path)])
    posted = runner.invoke(app, ["--log-level", "debug", "post"])
    listed = runner.invoke(app, ["--log-level", "debug", "codes", "list"])

    # The input was really landed and posted, so there was something to leak.
    assert imported.stdout.splitlines()[0] == (
        "orders.jsonl: 3 accepted, 0 duplicate, 1 stale, 2 quarantined"
    )
    assert posted.stdout.startswith("posted 3 events")
    dump = dump_of_every_table(database_url)
    assert "evt-0" in dump and "City Tours Ltd" in dump

    places = {
        "the database": dump,
        "the log": caplog.text,
        "the output": "".join(
            result.stdout + result.stderr for result in (imported, posted, listed)
        ),
    }
    if database_url.startswith("sqlite:///"):
        database_file = Path(database_url.removeprefix("sqlite:///"))
        places["the database file"] = b"".join(
            file.read_bytes() for file in database_file.parent.glob(database_file.name + "*")
        ).decode("utf-8", errors="replace")

    leaks = [
        f"{value!r} in {place}"
        for place, text in places.items()
        for value in PERSONAL_DATA
        if value in text
    ]
    assert leaks == []
