"""The SQL models of `dbt_like_sql/`: one select per file, run with bound parameters.

Column names and tables never come from user input: a model is a file of this repository,
and its parameters are bound, never formatted into the text.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa

from ledger_pipeline.storage import tables

# The models live in the repository's top-level `dbt_like_sql/`; the package reaches them through
# its link `ledger_pipeline/dbt_like_sql`, which a wheel turns into a copy (package data), so
# the package finds them from a checkout and installed elsewhere alike.
MODELS_FOLDER = Path(__file__).resolve().parents[1] / "dbt_like_sql"

# Models whose rows are kept in a table, replaced date range by date range.
MATERIALIZED: dict[str, sa.Table] = {"agg_daily_ledger_totals": tables.daily_ledger_totals}

_PARAMETER_TYPES = {"date_from": sa.Date(), "date_to": sa.Date()}


@cache
def model_sql(name: str) -> str:
    path = MODELS_FOLDER / f"{name}.sql"
    if not path.is_file():
        raise LookupError(f"no SQL model {name!r} in {MODELS_FOLDER}")
    return path.read_text(encoding="utf-8")


def model_select(name: str, parameters: dict[str, object]) -> sa.TextClause:
    """The model as a statement with its parameters bound (typed, so dates work everywhere)."""
    statement = sa.text(model_sql(name))
    return statement.bindparams(
        *(
            sa.bindparam(key, value, type_=_PARAMETER_TYPES.get(key))
            for key, value in parameters.items()
        )
    )
