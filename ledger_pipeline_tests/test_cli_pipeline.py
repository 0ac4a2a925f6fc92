"""The commands that run the pipeline: importing the hotel bookings, status, materialize."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger_pipeline.cli import app
from ledger_pipeline_tests.factories import jsonl, raw_event

HOTEL_FILE = Path(__file__).resolve().parents[1] / "data" / "hotel_bookings.csv.gz"


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    """A fresh SQLite ledger in Europe/Lisbon and a Dagster home; runs one command."""
    monkeypatch.setenv("LEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    monkeypatch.setenv("LEDGER_TIMEZONE", "Europe/Lisbon")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args))

    return run


def hotel_slice(tmp_path, rows: int) -> Path:
    """The header and the first `rows` bookings of the real file, gzipped."""
    with gzip.open(HOTEL_FILE, "rt", encoding="utf-8", newline="") as source:
        lines = [source.readline() for _ in range(rows + 1)]
    path = tmp_path / "hotel_slice.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as target:
        target.writelines(lines)
    return path


def test_importing_hotel_bookings_lands_two_events_per_booking(ledger, tmp_path):
    path = hotel_slice(tmp_path, 3)

    first = ledger("import", str(path), "--format", "hotel-bookings")
    again = ledger("import-hotel-bookings", str(path))

    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [
        "hotel_slice.csv.gz: 3 bookings",
        "hotel_slice.csv.gz: 6 accepted, 0 duplicate, 0 stale, 0 quarantined",
    ]
    assert again.stdout.splitlines()[1] == (
        "hotel_slice.csv.gz: 0 accepted, 6 duplicate, 0 stale, 0 quarantined"
    )


def test_importing_hotel_bookings_names_an_unreadable_row_and_lands_the_others(ledger, tmp_path):
    with gzip.open(HOTEL_FILE, "rt", encoding="utf-8", newline="") as source:
        lines = [source.readline() for _ in range(3)]
    # Row 2 loses its fields after the third; rows 1 and 3 are the file's first two bookings.
    cut = ",".join(lines[2].split(",")[:3]) + "\n"
    path = tmp_path / "bookings.csv"
    path.write_text(lines[0] + lines[1] + cut + lines[2])

    result = ledger("import-hotel-bookings", str(path))

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "bookings.csv: 2 bookings",
        "bookings.csv: 4 accepted, 0 duplicate, 0 stale, 0 quarantined",
        "  row 2: unreadable: has 3 fields where the header has 32",
    ]


def test_importing_a_cut_off_gzip_file_says_so_and_where(ledger, tmp_path):
    whole = hotel_slice(tmp_path, 3000).read_bytes()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])

    result = ledger("import-hotel-bookings", str(path))

    assert result.exit_code == 1
    assert re.fullmatch(
        rf"error: cannot read {re.escape(str(path))} past data row (\d+): the gzip data ends "
        r"early \(the file is cut off\) \(rows landed before stay landed: import the mended "
        r"file for the rest\)",
        result.output.strip(),
    ), result.output


def gzipped(text: str) -> bytes:
    return gzip.compress(text.encode())


def latin_1_hotel_name(text: str) -> bytes:
    return text.replace("Resort Hotel", "Resort H\u00f4tel").encode("latin-1")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (gzipped, "it is gzip-compressed, but its name does not end in .gz"),
        (latin_1_hotel_name, "not UTF-8 text (invalid continuation byte)"),
    ],
)
def test_importing_a_file_that_is_not_utf8_csv_names_the_reason(ledger, tmp_path, content, reason):
    with gzip.open(HOTEL_FILE, "rt", encoding="utf-8", newline="") as source:
        text = "".join(source.readline() for _ in range(4))
    path = tmp_path / "bookings.csv"
    path.write_bytes(content(text))

    result = ledger("import-hotel-bookings", str(path))

    assert result.exit_code == 1
    assert result.output.strip() == f"error: cannot read {path} past data row 0: {reason}"


def test_status_shows_events_rejections_and_balance(ledger, tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(jsonl(raw_event("e1"), "{broken")) + "\n")
    ledger("import", str(path))
    ledger("post")

    result = ledger("status")

    assert result.exit_code == 0, result.output
    # One confirmed order of 22.00: Dr cash 22.00 = Cr deferred_revenue 20.00 + Cr tax 2.00.
    assert "  confirmed: 1 landed, 1 posted" in result.stdout
    assert "  quarantined: 1 x bad JSON: Expecting property name enclosed in double quotes" in (
        result.stdout
    )
    assert "  EUR: 3 entries, debit 22.00, credit 22.00: balanced" in result.stdout


def test_materialize_runs_the_assets_through_dagster_in_few_runs(ledger, tmp_path):
    path = tmp_path / "orders.jsonl"
    path.write_text(
        "\n".join(
            jsonl(
                raw_event("e1", "order-1", occurred_at="2024-11-15T09:00:00+00:00"),
                raw_event("e2", "order-2", occurred_at="2024-11-19T09:00:00+00:00"),
            )
        )
        + "\n"
    )
    ledger("import", str(path))

    result = ledger("materialize", "--days-per-run", "3")
    status = ledger("status")

    assert result.exit_code == 0, result.output
    runs = [line for line in result.stdout.splitlines() if line.startswith("run ")]
    assert [line.split()[2] for line in runs] == [
        "2024-11-15..2024-11-17:",
        "2024-11-18..2024-11-19:",
    ]
    assert [line.split()[4] for line in runs] == ["3", "3"]
    assert "  EUR: 6 entries, debit 44.00, credit 44.00: balanced" in status.stdout
    assert (tmp_path / "dagster").is_dir()
    # The command it prints for the UI runs as given, activated virtual environment or not.
    ui = result.stdout.splitlines()[-1]
    assert ui.startswith(f"open the Dagster UI: DAGSTER_HOME={tmp_path / 'dagster'} ")
    assert ui.endswith(" dev -w workspace.yaml")
    assert shutil.which(ui.split()[-4]) is not None


def test_materialize_without_events_says_what_to_do(ledger):
    result = ledger("materialize")

    assert result.exit_code == 1
    assert "no landed events: import some first, or give --from and --to" in result.output


OCTO_FOLDER = Path(__file__).resolve().parents[1] / "data" / "octo"


def test_an_octo_booking_with_a_mistake_lands_nothing_and_names_it(ledger):
    path = OCTO_FOLDER / "ventrata_get_booking_example.json"

    result = ledger("import", str(path), "--format", "octo", "--destination", "London")

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: OCTO booking bbbb6227-54fc-4c32-9ed7-dc3eb99966ea: "
        "a booking that is ON_HOLD cannot carry a cancellation"
    )


def test_an_octo_booking_on_hold_is_not_posted(ledger):
    path = OCTO_FOLDER / "post_bookings_on_hold_booking_example.json"

    result = ledger("import", str(path), "--format", "octo", "--destination", "London")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "post_bookings_on_hold_booking_example.json: "
        "0 accepted, 0 duplicate, 0 stale, 0 quarantined"
    )


def test_an_octo_import_needs_a_destination(ledger):
    path = OCTO_FOLDER / "post_bookings_on_hold_booking_example.json"

    result = ledger("import", str(path), "--format", "octo")

    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --format octo needs --destination"
