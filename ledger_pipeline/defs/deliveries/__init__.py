"""Webhook delivery through Dagster: the delivery job, its sensor, and the replay job."""
