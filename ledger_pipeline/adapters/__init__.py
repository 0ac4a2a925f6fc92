"""Adapters: outside data turned into order-event records in the JSON Lines input shape.

An adapter emits plain JSON-ready dicts, never model objects, so that what it makes goes
through the same parser and landing rules as any other input. Adapters are pure: they read
what they are given and touch no storage.
"""

from ledger_pipeline.errors import AdapterError

__all__ = ["AdapterError"]
