"""The webhook receiver's service side: verify -> parse -> batch -> apply, one straight path.

    verify.py     the `Stripe-Signature` header against every configured secret
    envelope.py   the minimal, fast parse of a verified body into an `Event`
    batcher.py    group commit: deliveries that wait go in the next transaction together
    store.py      one transaction per batch, and isolation when a batch fails
    apply.py      store each event once, run the reducers, write the batch's changes
    reducers.py   the explicit table from event type to a pure reducer
    replay.py, reconcile.py   the same path, driven by commands

Imports nothing from `processor.web` or starlette.
"""
