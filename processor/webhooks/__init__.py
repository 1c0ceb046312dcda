"""The webhook receiver's service side: verify -> envelope -> store (with dispatch), in batches.

    verify.py     the `Stripe-Signature` header against every configured secret
    envelope.py   the minimal, fast parse of a verified body into an `Event`
    store.py      record the event and apply its handler in ONE transaction
    dispatch.py   the explicit table from event type to handler
    handlers/     one small function per event type, grouped by Stripe object family
    receiver.py   what the web layer hands a delivery to
    writer.py     verify, parse and store deliveries in batches (`BatchStore`), from threads
    writer_process.py   the same in a child process of the web worker (the default)
    replay.py, reconcile.py, method_details.py   the same path, driven by commands and workers

Imports nothing from `processor.web` or starlette.
"""
