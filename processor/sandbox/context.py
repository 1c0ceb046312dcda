"""One API call as the resources see it: parameters, caller, request id, and its side effects.

Resources change state through the store and report events and charges here; the app
delivers the events once the call is over, never inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from processor.sandbox.store import Store, StripeObject
from processor.sandbox.versions import PINNED_API_VERSION
from processor.sandbox.wire import Params


@dataclass
class Call:
    store: Store
    params: Params
    key_kind: str  # "secret", "publishable", or "system" for control-side actions
    api_version: str = PINNED_API_VERSION
    request_id: str | None = None
    idempotency_key: str | None = None
    base_url: str = ""
    path_args: dict[str, str] = field(default_factory=dict)
    emit_event: Callable[[Call, str, StripeObject, dict[str, Any] | None], StripeObject] | None = (
        None
    )
    record_charge: Callable[[Call, StripeObject], None] | None = None
    processing_started: Callable[[str], None] | None = None
    emitted: list[StripeObject] = field(default_factory=list)

    @property
    def publishable(self) -> bool:
        return self.key_kind == "publishable"

    @property
    def now(self) -> int:
        return self.store.now()

    def emit(
        self, event_type: str, obj: StripeObject, previous: dict[str, Any] | None = None
    ) -> None:
        if self.emit_event is not None:
            self.emitted.append(self.emit_event(self, event_type, obj, previous))

    def charged(self, charge: StripeObject) -> None:
        if self.record_charge is not None:
            self.record_charge(self, charge)
