"""The accounting core: order events, money and posting rules, with no Dagster and no database."""
