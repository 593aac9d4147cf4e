"""Webhooks: the outbox of changes (queueing, signed delivery, retries: `outbox`) and the network side of one
POST (`network`)."""
