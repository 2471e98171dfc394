"""The referral pages' forms: a decision on a held referral, and the program's settings.

The settings form is `PUT /v1/referral-program`'s body in fields: `settings_body` turns it
into that body (money typed in major units), `ReferralProgramUpdateSchema` validates it as
the API does, and `field_errors` puts the API's messages (nested under `friend_reward` and
`referrer_reward`) beside the fields they are about.
"""

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from console import display, once
from referrals.models import REFUSE, SEND_TO_REVIEW

NOTE_MAX = 500


class ApproveForm(FlaskForm):
    submission = once.OnceField(validators=[Length(max=64)])
    note = TextAreaField(
        "Note (optional)",
        validators=[Optional(), Length(max=NOTE_MAX)],
        description="Why it is fine, for whoever looks later; kept with the referral.",
        render_kw={"rows": 2, "maxlength": NOTE_MAX},
    )


class RejectForm(FlaskForm):
    submission = once.OnceField(validators=[Length(max=64)])
    reason = TextAreaField(
        "Why reject it",
        validators=[
            DataRequired(message="Say why: it is kept with the referral and in the audit log."),
            Length(max=NOTE_MAX),
        ],
        description="Required. The friend gets no reward and the referrer none for this friend.",
        render_kw={"rows": 2, "maxlength": NOTE_MAX},
    )


FRIEND_KINDS = [
    SelectChoice("amount_off", "An amount off"),
    SelectChoice("percent_off", "A percentage off"),
    SelectChoice("free_shipping", "Free shipping"),
    SelectChoice("free_product", "A free product"),
]
REFERRER_KINDS = [
    SelectChoice("points", "Points"),
    SelectChoice("reward", "A reward from the catalog"),
]
MISSING_IP = [
    SelectChoice(SEND_TO_REVIEW, "Hold it for review"),
    SelectChoice(REFUSE, "Refuse it"),
]
_CAP = "Empty for no limit."


class ReferralSettingsForm(FlaskForm):
    submission = once.OnceField(validators=[Length(max=64)])
    enabled = BooleanField("Referral program on")
    landing_url = StringField(
        "Landing page",
        validators=[Optional()],
        description="Where a share link sends the friend (with the code attached). "
        "Empty: the service's own welcome page.",
        render_kw={"inputmode": "url", "spellcheck": "false"},
    )
    friend_kind = SelectField("Friend's reward", choices=FRIEND_KINDS)
    friend_amount = StringField(
        "Amount off", description="For an amount off, e.g. 10.00.",
        render_kw={"inputmode": "decimal"},
    )  # fmt: skip
    friend_percent = IntegerField(
        "Percent off", validators=[Optional()], description="For a percentage off, 1 to 100."
    )
    friend_sku = StringField("Free product SKU", description="For a free product.")
    friend_min_order = StringField(
        "Friend's minimum order",
        description="The friend's first order must reach this for the code to apply (0: any).",
        render_kw={"inputmode": "decimal"},
    )
    friend_valid_days = IntegerField("Friend's code valid for (days)", validators=[InputRequired()])
    referrer_kind = SelectField("Referrer's reward", choices=REFERRER_KINDS)
    referrer_points = IntegerField("Points for the referrer", validators=[Optional()])
    referrer_reward_id = SelectField(
        "Catalog reward for the referrer", choices=[], validate_choice=False,
        description="Its code is issued, without points, when the reward matures.",
    )  # fmt: skip
    min_order_amount = StringField(
        "Minimum first order to convert",
        description="Net eligible spend (no tax, shipping or gift cards; refunds deducted) the "
        "friend's first order needs before the referrer is rewarded.",
        render_kw={"inputmode": "decimal"},
    )
    reward_hold_days = IntegerField(
        "Hold the referrer's reward for (days)",
        validators=[InputRequired()],
        description="At least this long, even when order points are available at once; a "
        "refund in that time takes the reward back.",
    )
    attribution_days = IntegerField(
        "A share link's visit counts for (days)", validators=[InputRequired()]
    )
    max_conversions_per_referrer_30d = IntegerField(
        "Most rewarded friends per referrer in 30 days", validators=[Optional()],
        description=_CAP,
    )  # fmt: skip
    max_claims_per_ip_7d = IntegerField(
        "Most referrals from one IP address in 7 days", validators=[Optional()],
        description=_CAP,
    )  # fmt: skip
    missing_ip = SelectField("A referral without the friend's IP address", choices=MISSING_IP)

    def fill(self, view: dict, currency: str) -> None:
        """Show `settings_view` (the API's GET) in the fields."""
        friend, referrer = view["friend_reward"], view["referrer_reward"]
        self.enabled.data = view["enabled"]
        self.landing_url.data = view["landing_url"] or ""
        self.friend_kind.data = friend["kind"]
        self.friend_amount.data = display.major_units(friend.get("amount"), currency)
        self.friend_percent.data = friend.get("percent")
        self.friend_sku.data = friend.get("sku", "")
        self.friend_min_order.data = display.major_units(friend["min_order"], currency)
        self.friend_valid_days.data = friend["valid_days"]
        self.referrer_kind.data = "reward" if "reward_id" in referrer else "points"
        self.referrer_points.data = referrer.get("points")
        self.referrer_reward_id.data = str(referrer.get("reward_id") or "")
        self.min_order_amount.data = display.major_units(view["min_order_amount"], currency)
        self.reward_hold_days.data = view["reward_hold_days"]
        self.attribution_days.data = view["attribution_days"]
        self.max_conversions_per_referrer_30d.data = view["max_conversions_per_referrer_30d"]
        self.max_claims_per_ip_7d.data = view["max_claims_per_ip_7d"]
        self.missing_ip.data = view["missing_ip"]


def _money(form: ReferralSettingsForm, name: str, currency: str, body: dict, key: str) -> None:
    field = getattr(form, name)
    try:
        value = display.minor_units(field.data, currency)
    except ValueError as error:
        field.errors = [*field.errors, str(error)]
        return
    if value is not None:
        body[key] = value


def settings_body(form: ReferralSettingsForm, currency: str) -> dict | None:
    """`PUT /v1/referral-program`'s body from the form; None (errors on the fields) when an
    amount can't be read."""
    friend: dict = {"kind": form.friend_kind.data}
    kind = form.friend_kind.data
    if kind == "amount_off":
        _money(form, "friend_amount", currency, friend, "amount")
    elif kind == "percent_off" and form.friend_percent.data is not None:
        friend["percent"] = form.friend_percent.data
    elif kind == "free_product" and (form.friend_sku.data or "").strip():
        friend["sku"] = form.friend_sku.data.strip()
    _money(form, "friend_min_order", currency, friend, "min_order")
    friend["valid_days"] = form.friend_valid_days.data
    referrer: dict = {}
    if form.referrer_kind.data == "reward":
        chosen = form.referrer_reward_id.data or ""
        if chosen.isdigit():
            referrer["reward_id"] = int(chosen)
    elif form.referrer_points.data is not None:
        referrer["points"] = form.referrer_points.data
    body = {
        "enabled": bool(form.enabled.data),
        "landing_url": (form.landing_url.data or "").strip() or None,
        "friend_reward": friend,
        "referrer_reward": referrer,
        "max_conversions_per_referrer_30d": form.max_conversions_per_referrer_30d.data,
        "max_claims_per_ip_7d": form.max_claims_per_ip_7d.data,
        "attribution_days": form.attribution_days.data,
        "reward_hold_days": form.reward_hold_days.data,
        "missing_ip": form.missing_ip.data,
    }
    _money(form, "min_order_amount", currency, body, "min_order_amount")
    if "min_order_amount" not in body and not form.min_order_amount.errors:
        form.min_order_amount.errors = ["Enter an amount such as 1.00."]
    if any(field.errors for field in form):
        return None
    return body


# The API's field names (nested ones as "parent.child") and the form's field for each.
_FIELDS = {
    "friend_reward.kind": "friend_kind",
    "friend_reward.amount": "friend_amount",
    "friend_reward.percent": "friend_percent",
    "friend_reward.sku": "friend_sku",
    "friend_reward.min_order": "friend_min_order",
    "friend_reward.valid_days": "friend_valid_days",
    "referrer_reward.points": "referrer_points",
    "referrer_reward.reward_id": "referrer_reward_id",
}


def field_errors(messages: object) -> dict:
    """The API's `errors` with nested names flattened to the form's field names."""
    if not isinstance(messages, dict):
        return {"_schema": messages}
    flat: dict = {}
    for name, value in messages.items():
        if name in ("friend_reward", "referrer_reward") and isinstance(value, dict):
            for inner, inner_value in value.items():
                key = _FIELDS.get(f"{name}.{inner}", "_schema")
                if name == "referrer_reward" and inner == "_schema":
                    key = "referrer_points"
                flat.setdefault(key, []).extend(
                    inner_value if isinstance(inner_value, list) else [inner_value]
                )
        else:
            flat[name] = value
    return flat
