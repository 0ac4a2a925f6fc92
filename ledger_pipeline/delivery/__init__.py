"""Webhook delivery: signing a payload (Standard Webhooks), the retry schedule, and sending
one attempt to a registry's URL with the SSRF guard (see docs/delivery.md)."""
