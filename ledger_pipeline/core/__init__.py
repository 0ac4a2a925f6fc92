"""The accounting core: order events, money, posting rules. Imports neither Dagster nor a database."""
