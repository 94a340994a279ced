"""Envelope notifications: what the indexer learns of envelopes on chain, told to whoever follows them —
server-sent events (api/routes/notifications.py), HMAC-signed webhooks and SMTP invitations and reminders, both
through a durable, retried delivery queue worked under the pipeline's lease (:mod:`.delivery`)."""
