"""The update parameters SetupIntents and PaymentIntents share: customer, payment method,
metadata and (before endive) payment method types, checked before the intent changes at all."""

from __future__ import annotations

from dataclasses import dataclass

from processor.sandbox import intents
from processor.sandbox.context import Call
from processor.sandbox.store import StripeObject
from processor.sandbox.wire import Params, merge_metadata


@dataclass(frozen=True)
class SharedUpdate:
    """What an update of either intent kind asks for in the shared parameters, checked."""

    params: Params
    customer_id: str | None
    method: StripeObject | None
    metadata: dict[str, str]
    types: list[str] | None

    def apply(self, call: Call, intent: StripeObject) -> StripeObject:
        """Write the checked values (only the parameters the request named change); the intent
        as the update answers it."""
        if "customer" in self.params:
            intent["customer"] = self.customer_id
        if "payment_method" in self.params:
            intents.set_payment_method(intent, self.method)
        intent["metadata"] = self.metadata
        if self.types is not None:
            intent["payment_method_types"] = self.types
        call.store.touch()
        return intents.view(call, intent)


def read_shared_update(
    call: Call, params: Params, intent: StripeObject, types: list[str] | None
) -> SharedUpdate:
    """Check the shared parameters; raises before anything on the intent changes."""
    return SharedUpdate(
        params=params,
        customer_id=intents.customer_param(call, params),
        method=intents.payment_method_param(call, params),
        metadata=merge_metadata(intent["metadata"], params.get("metadata")),
        types=types,
    )
