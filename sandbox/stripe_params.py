"""Which request parameters Stripe knows, read from stripe-python's own parameter types.

stripe-python (pinned in requirements.txt) ships a TypedDict for every request, generated
from Stripe's OpenAPI spec. Its keys, less the client-side request options (api_key,
idempotency_key, …), are the parameters the API accepts: anything else is answered
"Received unknown parameter", as Stripe does. Upgrading stripe-python updates the emulator.
"""

from __future__ import annotations

from typing import Any

from stripe._request_options import RequestOptions
from stripe.params import (
    CustomerCreateParams,
    CustomerRetrieveParams,
    RefundCreateParams,
    RefundListParams,
    SubscriptionCancelParams,
)
from stripe.params.billing_portal import (
    SessionCreateParams as PortalSessionCreateParams,
)
from stripe.params.billing_portal import (
    SessionCreateParamsFlowData,
    SessionCreateParamsFlowDataSubscriptionCancel,
    SessionCreateParamsFlowDataSubscriptionUpdate,
)
from stripe.params.checkout import (
    SessionCreateParams,
    SessionCreateParamsAfterExpiration,
    SessionCreateParamsAfterExpirationRecovery,
    SessionCreateParamsLineItem,
    SessionCreateParamsShippingAddressCollection,
    SessionCreateParamsShippingOption,
    SessionCreateParamsShippingOptionShippingRateData,
    SessionCreateParamsShippingOptionShippingRateDataDeliveryEstimate,
    SessionCreateParamsShippingOptionShippingRateDataDeliveryEstimateMinimum,
    SessionCreateParamsShippingOptionShippingRateDataFixedAmount,
    SessionExpireParams,
    SessionListParams,
    SessionRetrieveParams,
)

_CLIENT_OPTIONS = RequestOptions.__required_keys__ | RequestOptions.__optional_keys__


def parameters(typed_dict: Any) -> frozenset[str]:
    """The API parameters of a stripe-python params TypedDict."""
    keys: frozenset[str] = typed_dict.__required_keys__ | typed_dict.__optional_keys__
    return keys - _CLIENT_OPTIONS


SESSION_CREATE = parameters(SessionCreateParams)
LINE_ITEM = parameters(SessionCreateParamsLineItem)
AFTER_EXPIRATION = parameters(SessionCreateParamsAfterExpiration)
RECOVERY = parameters(SessionCreateParamsAfterExpirationRecovery)
SHIPPING_ADDRESS_COLLECTION = parameters(SessionCreateParamsShippingAddressCollection)
SHIPPING_OPTION = parameters(SessionCreateParamsShippingOption)
SHIPPING_RATE_DATA = parameters(SessionCreateParamsShippingOptionShippingRateData)
FIXED_AMOUNT = parameters(SessionCreateParamsShippingOptionShippingRateDataFixedAmount)
DELIVERY_ESTIMATE = parameters(SessionCreateParamsShippingOptionShippingRateDataDeliveryEstimate)
ESTIMATE_BOUND = parameters(
    SessionCreateParamsShippingOptionShippingRateDataDeliveryEstimateMinimum
)
SESSION_LIST = parameters(SessionListParams)
SESSION_EXPIRE = parameters(SessionExpireParams)
SESSION_RETRIEVE = parameters(SessionRetrieveParams)
REFUND_CREATE = parameters(RefundCreateParams)
REFUND_LIST = parameters(RefundListParams)
SUBSCRIPTION_CANCEL = parameters(SubscriptionCancelParams)
CUSTOMER_CREATE = parameters(CustomerCreateParams)
CUSTOMER_RETRIEVE = parameters(CustomerRetrieveParams)
PORTAL_SESSION_CREATE = parameters(PortalSessionCreateParams)
FLOW_DATA = parameters(SessionCreateParamsFlowData)
FLOW_SUBSCRIPTION_CANCEL = parameters(SessionCreateParamsFlowDataSubscriptionCancel)
FLOW_SUBSCRIPTION_UPDATE = parameters(SessionCreateParamsFlowDataSubscriptionUpdate)


def unknown(params: dict[str, Any], known: frozenset[str]) -> str | None:
    """The first parameter (in sorted order) that `known` does not hold, if any."""
    extra = sorted(set(params) - known)
    return extra[0] if extra else None
