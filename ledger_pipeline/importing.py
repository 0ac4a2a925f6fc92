"""Reading JSON Lines files of order events into the ledger."""

from __future__ import annotations

import csv
import functools
import json
import logging
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ledger_pipeline.adapters.hotel_bookings import HotelRejection, hotel_record, hotel_rows
from ledger_pipeline.adapters.octo import octo_booking_events
from ledger_pipeline.errors import InputFileError
from ledger_pipeline.storage.store import LandingReport, LedgerStore

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


def land_file(store: LedgerStore, path: Path) -> LandingReport:
    """Lands every non-blank line of a JSON Lines file, in file order.

    Raises:
        InputFileError: the file cannot be opened or read, or is gzip-compressed (its bytes
            would land as thousands of lines of bad JSON).
    """
    try:
        handle = path.open("rb")
    except OSError as error:
        raise InputFileError(f"cannot read {path}: {error.strerror or error}") from error
    with handle:
        try:
            compressed = handle.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)] == GZIP_MAGIC
        except OSError as error:
            raise InputFileError(f"cannot read {path}: {error.strerror or error}") from error
        if compressed:
            raise InputFileError(
                f"{path} is gzip-compressed, and JSON Lines are read as plain text: for the "
                "hotel bookings CSV give --format hotel-bookings, else gunzip the file first"
            )
        return store.land(file_records(path.name, handle))


def file_records(source: str, handle: BinaryIO) -> Iterator[tuple[str, int, bytes]]:
    """(source name, line number, line) of every line that is not blank. A UTF-8 byte order
    mark that starts the file (as some Windows editors write) is not part of its first line."""
    try:
        for number, line in enumerate(handle, start=1):
            if number == 1:
                line = line.removeprefix(UTF8_BOM)
            if line.strip():
                yield source, number, line.rstrip(b"\r\n")
    except OSError as error:
        raise InputFileError(f"cannot read {source}: {error.strerror or error}") from error


@dataclass
class HotelLandingReport:
    """What an import of the hotel bookings file did: the landing counts of its events and the
    rows that could not become events at all."""

    landing: LandingReport
    bookings: int = 0

    @property
    def unreadable_rows(self) -> list[HotelRejection]:
        """The rows that could not become events, in row order."""
        return self.landing.unreadable


def land_hotel_bookings(
    store: LedgerStore,
    path: Path,
    on_progress: Callable[[int], None] | None = None,
) -> HotelLandingReport:
    """Lands the order events of the hotel bookings CSV (see docs/hotel_bookings.md).

    Each event is landed with its CSV data row number as its line number, so a rejection
    names the row it came from. This process reads the rows; the store's worker processes
    turn them into events and parse those (see `LedgerStore.land`).

    Args:
        on_progress: called with the number of rows read so far, every 1,000 rows.
    """
    rows_read = 0

    def counted(rows: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
        nonlocal rows_read
        for row in rows:
            rows_read += 1
            if on_progress and rows_read % 1000 == 0:
                on_progress(rows_read)
            yield row

    try:
        with hotel_rows(path) as (header, rows):
            expand = functools.partial(_hotel_lines, source=path.name, header=header)
            landing = store.land(counted(rows), expand=expand)
    except OSError as error:
        raise InputFileError(f"cannot read {path}: {error.strerror or error}") from error
    except (EOFError, UnicodeDecodeError, csv.Error, zlib.error) as error:
        # A cut-off gzip file, bytes that are not UTF-8, a quote that is never closed: the
        # rest of the file cannot be read as CSV rows.
        message = f"cannot read {path} past data row {rows_read}: "
        message += _unreadable_file_reason(path, error)
        if rows_read:
            message += " (rows landed before stay landed: import the mended file for the rest)"
        raise InputFileError(message) from error
    # Limitation: the unreadable rows come back with the landing report, so an import that
    # fails part way (the file cannot be read to its end) names none of those it read before;
    # the chunks it committed stay landed, and importing the file again names them all.
    report = HotelLandingReport(landing, rows_read - len(landing.unreadable))
    for rejection in report.unreadable_rows:
        logger.warning("row %d of %s: %s", rejection.row, path.name, rejection.reason)
    if on_progress:
        on_progress(rows_read)
    return report


def _unreadable_file_reason(path: Path, error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        with path.open("rb") as handle:
            if handle.read(len(GZIP_MAGIC)) == GZIP_MAGIC:
                return "it is gzip-compressed, but its name does not end in .gz"
        return f"not UTF-8 text ({error.reason})"
    if isinstance(error, EOFError):
        return "the gzip data ends early (the file is cut off)"
    return str(error)


def _hotel_lines(
    row: tuple[int, list[str]], *, source: str, header: tuple[str, ...]
) -> tuple[list[tuple[str, int, Mapping[str, Any]]], HotelRejection | None]:
    """The lines to land of one CSV row (`LedgerStore.land`'s `expand`): its events, landed as
    the objects they are (no JSON text to write and read back), or why it has none."""
    record = hotel_record(*row, header)
    if isinstance(record, HotelRejection):
        return [], record
    return [(source, record.row, event) for event in record.events], None


def land_octo_booking(store: LedgerStore, path: Path, destination: str) -> LandingReport:
    """Lands the order events of one OCTO booking (see `ledger_pipeline.adapters.octo`).

    Raises:
        InputFileError: the file cannot be read or is not JSON.
        AdapterError: the booking holds a mistake; nothing of it is landed.
    """
    try:
        document = json.loads(path.read_bytes())
    except OSError as error:
        raise InputFileError(f"cannot read {path}: {error.strerror or error}") from error
    except ValueError as error:
        raise InputFileError(f"{path} is not JSON: {error}") from error

    events = octo_booking_events(document, destination=destination)
    records = (
        (path.name, number, json.dumps(event)) for number, event in enumerate(events, start=1)
    )
    return store.land(records)
