"""Reading JSON Lines files of order events into the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ledger_pipeline.errors import InputFileError
from ledger_pipeline.storage.store import LandingReport, LedgerStore


def land_file(store: LedgerStore, path: Path) -> LandingReport:
    """Lands every non-blank line of a JSON Lines file, in file order.

    Raises:
        InputFileError: the file cannot be opened or read.
    """
    try:
        handle = path.open("rb")
    except OSError as error:
        raise InputFileError(f"cannot read {path}: {error.strerror or error}") from error
    with handle:
        return store.land(file_records(path.name, handle))


def file_records(source: str, handle: BinaryIO) -> Iterator[tuple[str, int, bytes]]:
    """(source name, line number, line) of every line that is not blank."""
    try:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield source, number, line.rstrip(b"\r\n")
    except OSError as error:
        raise InputFileError(f"cannot read {source}: {error.strerror or error}") from error
