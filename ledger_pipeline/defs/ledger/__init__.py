"""Order events to ledger entries: daily partitions, checks, sensors and the daily schedule."""
