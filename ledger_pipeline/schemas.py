"""The frames that cross a boundary (storage to pipeline, pipeline to reports), checked by pandera.

Money and measures are nullable `Int64` columns of minor units, never floats. Dates are
`datetime.date` values (accounting dates are local dates, not instants); instants are UTC
timestamps. Tag columns hold sorted tuples of strings.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from ledger_pipeline.core.model import EventType
from ledger_pipeline.core.posting import ACCOUNTS, TAG_COLUMNS

EVENT_TYPES = [str(event_type) for event_type in EventType]
ACCOUNT_TYPES = {account: account_type for account, (account_type, _) in ACCOUNTS.items()}

_UTC = {"unit": "us", "tz": "UTC"}


def _utc_instant(nullable: bool = False) -> pa.Field:
    return pa.Field(dtype_kwargs=_UTC, nullable=nullable)


class OrderEventFrame(pa.DataFrameModel):
    """One row per landed order event."""

    event_id: Series[str] = pa.Field(unique=True)
    order_id: Series[str]
    order_version: Series[pd.Int64Dtype] = pa.Field(ge=1)
    type: Series[str] = pa.Field(isin=EVENT_TYPES)
    occurred_at: Series[pd.DatetimeTZDtype] = _utc_instant()
    date: Series[pa.dtypes.Date]
    content_hash: Series[str] = pa.Field(str_length={"min_value": 64, "max_value": 64})
    source: Series[str] = pa.Field(nullable=True)
    line_number: Series[pd.Int64Dtype] = pa.Field(ge=1, nullable=True)
    landed_at: Series[pd.DatetimeTZDtype] = _utc_instant()
    posted_at: Series[pd.DatetimeTZDtype] = _utc_instant(nullable=True)

    class Config:
        strict = True
        ordered = True
        coerce = True
        unique = ["order_id", "order_version"]


class LedgerEntryFrame(pa.DataFrameModel):
    """One row per ledger entry, one column per `LedgerEntry` field, in the field order."""

    entry_id: Series[str] = pa.Field(unique=True)
    event_id: Series[str]
    event_type: Series[str] = pa.Field(isin=EVENT_TYPES)
    order_id: Series[str]
    order_version: Series[pd.Int64Dtype] = pa.Field(ge=1)
    line_id: Series[str]
    account: Series[str] = pa.Field(isin=list(ACCOUNT_TYPES))
    account_type: Series[str] = pa.Field(isin=sorted(set(ACCOUNT_TYPES.values())))
    debit: Series[pd.Int64Dtype] = pa.Field(ge=0)
    credit: Series[pd.Int64Dtype] = pa.Field(ge=0)
    currency: Series[str] = pa.Field(str_matches=r"^[A-Z]{3}$")
    currency_precision: Series[pd.Int64Dtype] = pa.Field(ge=0)
    ledger_code: Series[str] = pa.Field(nullable=True)
    description: Series[str]
    key: Series[str]
    date: Series[pa.dtypes.Date]
    occurred_at: Series[pd.DatetimeTZDtype] = _utc_instant()
    destination: Series[str]
    test: Series[bool]
    deferred: Series[bool]
    redeemed: Series[bool]
    noshow: Series[bool]
    upgraded: Series[bool]
    reseller: Series[str] = pa.Field(nullable=True)
    reseller_band: Series[str] = pa.Field(nullable=True)
    reseller_channel: Series[str] = pa.Field(nullable=True)
    reseller_tags: Series[object]
    unit: Series[str]
    option: Series[str]
    product: Series[str]
    product_tags: Series[object]
    package_product: Series[str] = pa.Field(nullable=True)
    package_option: Series[str] = pa.Field(nullable=True)
    promotion: Series[str] = pa.Field(nullable=True)
    promotion_tags: Series[object]
    package_promotion: Series[str] = pa.Field(nullable=True)
    package_promotion_tags: Series[object]
    ledger_code_account_type: Series[str] = pa.Field(isin=sorted(set(ACCOUNT_TYPES.values())))
    travel_date: Series[pa.dtypes.Date]
    redemption_date: Series[pa.dtypes.Date] = pa.Field(nullable=True)
    order: Series[str]
    order_channel: Series[str] = pa.Field(nullable=True)
    order_source: Series[str] = pa.Field(nullable=True)
    sale_type: Series[str] = pa.Field(nullable=True)
    quantity: Series[pd.Int64Dtype]
    size: Series[pd.Int64Dtype]
    revenue_total: Series[pd.Int64Dtype]
    discount_total: Series[pd.Int64Dtype]
    adjustment_total: Series[pd.Int64Dtype]
    commission_adjustment_total: Series[pd.Int64Dtype]
    total: Series[pd.Int64Dtype]
    commission_total: Series[pd.Int64Dtype]
    wholesale_total: Series[pd.Int64Dtype]
    tax_total: Series[pd.Int64Dtype]

    class Config:
        strict = True
        ordered = True
        coerce = True

    @pa.check(*TAG_COLUMNS, element_wise=True, name="sorted_tuple_of_tags")
    def tags_are_sorted_tuples(cls, value: object) -> bool:
        return (
            isinstance(value, tuple)
            and all(isinstance(tag, str) for tag in value)
            and list(value) == sorted(value)
        )

    @pa.dataframe_check(name="one_side_per_entry")
    def exactly_one_side_is_not_zero(cls, frame: pd.DataFrame) -> pd.Series:
        return (frame["debit"] == 0) != (frame["credit"] == 0)

    @pa.dataframe_check(name="account_type_of_account")
    def account_type_matches_account(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["account"].map(ACCOUNT_TYPES) == frame["account_type"]


FAILURE_COLUMNS = ["schema_context", "column", "check", "check_number", "failure_case", "index"]


def entry_schema_failures(entries: pd.DataFrame) -> pd.DataFrame:
    """Every way the frame breaks `LedgerEntryFrame`, one row per failing check and value
    (pandera's failure cases: the column, the check, the failing value and its row `index`);
    empty when the frame is valid."""
    try:
        LedgerEntryFrame.validate(entries, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return errors.failure_cases
    return pd.DataFrame(columns=FAILURE_COLUMNS)
