"""Order events for tests, written as the JSON Lines input the product reads."""

from __future__ import annotations

import json
from typing import Any


def raw_event(
    event_id: str,
    order_id: str = "order-1",
    version: int = 1,
    event_type: str = "confirmed",
    occurred_at: str = "2024-11-15T09:24:00+01:00",
    *,
    product: str = "Museum",
    retail: int = 2200,
    tax: int = 200,
    **order_fields: Any,
) -> dict[str, Any]:
    """An order event with one line of `retail` (tax `tax`), sold before its travel date."""
    order = {
        "id": order_id,
        "version": version,
        "reference": f"REF-{order_id}",
        "destination": "Krno",
        "channel": "Terminals",
        "source": "terminal",
        "currency": "EUR",
        "currency_precision": 2,
        "items": [
            {
                "id": "li-1",
                "product": product,
                "option": "Day ticket",
                "unit": "Adult",
                "quantity": 2,
                "travel_date": "2024-11-20",
                "status": "confirmed",
                "retail": retail,
                "tax": tax,
            }
        ],
        **order_fields,
    }
    return {"event_id": event_id, "type": event_type, "occurred_at": occurred_at, "order": order}


def jsonl(*events: dict[str, Any] | str) -> list[str]:
    """Lines of a JSON Lines file; a string is taken as a line as it is."""
    return [event if isinstance(event, str) else json.dumps(event) for event in events]


def records(lines: list[str], source: str = "orders.jsonl") -> list[tuple[str, int, str]]:
    return [(source, number, line) for number, line in enumerate(lines, start=1)]


def history(order_id: str, versions: int = 3, prefix: str = "evt") -> list[dict[str, Any]]:
    """An order confirmed, then updated: each update raises the price by 1.00."""
    events = [raw_event(f"{prefix}-{order_id}-1", order_id, 1)]
    for version in range(2, versions + 1):
        events.append(
            raw_event(
                f"{prefix}-{order_id}-{version}",
                order_id,
                version,
                "updated",
                f"2024-11-15T1{version}:00:00+01:00",
                retail=2200 + 100 * version,
            )
        )
    return events
