from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("event_id", "merchant_id", "event_time", "merchant_registered", "listing_updated", "auto_follow_toggled", "competitor_price_observed", "prompt_dismissed", "impressions_served", "order_placed", "order_shipped", "refund_requested", "merchant_responded", "platform_intervened", "appeal_filed", "appeal_decided", "ad_click_charged")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    LISTING_UPDATED_FIELD_NUMBER: _ClassVar[int]
    AUTO_FOLLOW_TOGGLED_FIELD_NUMBER: _ClassVar[int]
    COMPETITOR_PRICE_OBSERVED_FIELD_NUMBER: _ClassVar[int]
    PROMPT_DISMISSED_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_SERVED_FIELD_NUMBER: _ClassVar[int]
    ORDER_PLACED_FIELD_NUMBER: _ClassVar[int]
    ORDER_SHIPPED_FIELD_NUMBER: _ClassVar[int]
    REFUND_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_RESPONDED_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_INTERVENED_FIELD_NUMBER: _ClassVar[int]
    APPEAL_FILED_FIELD_NUMBER: _ClassVar[int]
    APPEAL_DECIDED_FIELD_NUMBER: _ClassVar[int]
    AD_CLICK_CHARGED_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    merchant_id: str
    event_time: str
    merchant_registered: MerchantRegistered
    listing_updated: ListingUpdated
    auto_follow_toggled: AutoFollowToggled
    competitor_price_observed: CompetitorPriceObserved
    prompt_dismissed: PromptDismissed
    impressions_served: ImpressionsServed
    order_placed: OrderPlaced
    order_shipped: OrderShipped
    refund_requested: RefundRequested
    merchant_responded: MerchantResponded
    platform_intervened: PlatformIntervened
    appeal_filed: AppealFiled
    appeal_decided: AppealDecided
    ad_click_charged: AdClickCharged
    def __init__(self, event_id: _Optional[str] = ..., merchant_id: _Optional[str] = ..., event_time: _Optional[str] = ..., merchant_registered: _Optional[_Union[MerchantRegistered, _Mapping]] = ..., listing_updated: _Optional[_Union[ListingUpdated, _Mapping]] = ..., auto_follow_toggled: _Optional[_Union[AutoFollowToggled, _Mapping]] = ..., competitor_price_observed: _Optional[_Union[CompetitorPriceObserved, _Mapping]] = ..., prompt_dismissed: _Optional[_Union[PromptDismissed, _Mapping]] = ..., impressions_served: _Optional[_Union[ImpressionsServed, _Mapping]] = ..., order_placed: _Optional[_Union[OrderPlaced, _Mapping]] = ..., order_shipped: _Optional[_Union[OrderShipped, _Mapping]] = ..., refund_requested: _Optional[_Union[RefundRequested, _Mapping]] = ..., merchant_responded: _Optional[_Union[MerchantResponded, _Mapping]] = ..., platform_intervened: _Optional[_Union[PlatformIntervened, _Mapping]] = ..., appeal_filed: _Optional[_Union[AppealFiled, _Mapping]] = ..., appeal_decided: _Optional[_Union[AppealDecided, _Mapping]] = ..., ad_click_charged: _Optional[_Union[AdClickCharged, _Mapping]] = ...) -> None: ...

class MerchantRegistered(_message.Message):
    __slots__ = ("size_tier", "name", "region")
    SIZE_TIER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    size_tier: str
    name: str
    region: str
    def __init__(self, size_tier: _Optional[str] = ..., name: _Optional[str] = ..., region: _Optional[str] = ...) -> None: ...

class ListingUpdated(_message.Message):
    __slots__ = ("listing_id", "product_group", "price", "unit_cost", "quality", "promo_signup_price")
    LISTING_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_GROUP_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    UNIT_COST_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    PROMO_SIGNUP_PRICE_FIELD_NUMBER: _ClassVar[int]
    listing_id: str
    product_group: str
    price: float
    unit_cost: float
    quality: float
    promo_signup_price: float
    def __init__(self, listing_id: _Optional[str] = ..., product_group: _Optional[str] = ..., price: _Optional[float] = ..., unit_cost: _Optional[float] = ..., quality: _Optional[float] = ..., promo_signup_price: _Optional[float] = ...) -> None: ...

class AutoFollowToggled(_message.Message):
    __slots__ = ("listing_id", "enrolled", "steps", "verified", "via")
    LISTING_ID_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    VIA_FIELD_NUMBER: _ClassVar[int]
    listing_id: str
    enrolled: bool
    steps: int
    verified: bool
    via: str
    def __init__(self, listing_id: _Optional[str] = ..., enrolled: _Optional[bool] = ..., steps: _Optional[int] = ..., verified: _Optional[bool] = ..., via: _Optional[str] = ...) -> None: ...

class CompetitorPriceObserved(_message.Message):
    __slots__ = ("listing_id", "competitor_price", "competitor_id")
    LISTING_ID_FIELD_NUMBER: _ClassVar[int]
    COMPETITOR_PRICE_FIELD_NUMBER: _ClassVar[int]
    COMPETITOR_ID_FIELD_NUMBER: _ClassVar[int]
    listing_id: str
    competitor_price: float
    competitor_id: str
    def __init__(self, listing_id: _Optional[str] = ..., competitor_price: _Optional[float] = ..., competitor_id: _Optional[str] = ...) -> None: ...

class PromptDismissed(_message.Message):
    __slots__ = ("listing_id",)
    LISTING_ID_FIELD_NUMBER: _ClassVar[int]
    listing_id: str
    def __init__(self, listing_id: _Optional[str] = ...) -> None: ...

class ImpressionsServed(_message.Message):
    __slots__ = ("listing_id", "product_group", "rank", "impressions", "channel")
    LISTING_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_GROUP_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    listing_id: str
    product_group: str
    rank: int
    impressions: int
    channel: str
    def __init__(self, listing_id: _Optional[str] = ..., product_group: _Optional[str] = ..., rank: _Optional[int] = ..., impressions: _Optional[int] = ..., channel: _Optional[str] = ...) -> None: ...

class OrderPlaced(_message.Message):
    __slots__ = ("order_id", "listing_id", "quantity", "amount", "shipping_cost")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LISTING_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_COST_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    listing_id: str
    quantity: int
    amount: float
    shipping_cost: float
    def __init__(self, order_id: _Optional[str] = ..., listing_id: _Optional[str] = ..., quantity: _Optional[int] = ..., amount: _Optional[float] = ..., shipping_cost: _Optional[float] = ...) -> None: ...

class OrderShipped(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class RefundRequested(_message.Message):
    __slots__ = ("order_id", "kind", "evidence_valid", "amount", "reason")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_VALID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    kind: str
    evidence_valid: bool
    amount: float
    reason: str
    def __init__(self, order_id: _Optional[str] = ..., kind: _Optional[str] = ..., evidence_valid: _Optional[bool] = ..., amount: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class MerchantResponded(_message.Message):
    __slots__ = ("order_id", "decision", "reason")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    decision: str
    reason: str
    def __init__(self, order_id: _Optional[str] = ..., decision: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PlatformIntervened(_message.Message):
    __slots__ = ("order_id", "requested_by")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    requested_by: str
    def __init__(self, order_id: _Optional[str] = ..., requested_by: _Optional[str] = ...) -> None: ...

class AppealFiled(_message.Message):
    __slots__ = ("appeal_id", "order_id", "human_review_requested")
    APPEAL_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    HUMAN_REVIEW_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    appeal_id: str
    order_id: str
    human_review_requested: bool
    def __init__(self, appeal_id: _Optional[str] = ..., order_id: _Optional[str] = ..., human_review_requested: _Optional[bool] = ...) -> None: ...

class AppealDecided(_message.Message):
    __slots__ = ("appeal_id", "outcome", "reviewer")
    APPEAL_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    appeal_id: str
    outcome: str
    reviewer: str
    def __init__(self, appeal_id: _Optional[str] = ..., outcome: _Optional[str] = ..., reviewer: _Optional[str] = ...) -> None: ...

class AdClickCharged(_message.Message):
    __slots__ = ("listing_id", "clicks")
    LISTING_ID_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    listing_id: str
    clicks: int
    def __init__(self, listing_id: _Optional[str] = ..., clicks: _Optional[int] = ...) -> None: ...
