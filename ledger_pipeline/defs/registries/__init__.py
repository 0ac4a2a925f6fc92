"""Registry aggregates: each registry's daily totals, partitioned by date and registry."""
