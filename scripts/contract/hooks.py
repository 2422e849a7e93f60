"""schemathesis hooks for `make contract`: generators for the OpenAPI document's own string formats.

The document marks the Israeli values whose validity a regular expression cannot say with a
format (`il-id`: the check digit of an ID or corporate number; `il-phone`: an Israeli number in
any common notation). Registered here, schemathesis generates valid values for them in its
positive cases, as a client that knows the formats would send; without them it would send random
digits and count the API's correct 422 as a valid request refused. Nothing here decides what the
API accepts: the rules are in crates/domain (israeli_id.rs, phone.rs).
"""

import schemathesis
from hypothesis import strategies as st


def _with_check_digit(first_eight: int) -> str:
    digits = f"{first_eight:08d}"
    total = 0
    for index, char in enumerate(digits):
        product = int(char) * (1 if index % 2 == 0 else 2)
        total += product - 9 if product > 9 else product
    return digits + str((10 - total % 10) % 10)


israeli_ids = st.integers(min_value=1, max_value=99_999_999).map(_with_check_digit)


def _phone(prefix: str, rest: str, style: int) -> str:
    number = "0" + prefix + rest
    if style == 1:
        return f"{number[:3]}-{number[3:6]}-{number[6:]}"
    if style == 2:
        return f"+972 {prefix} {rest[:3]} {rest[3:]}"
    return number


mobile = st.builds(
    _phone,
    st.sampled_from(["50", "52", "53", "54", "55", "58"]),
    st.text(alphabet="0123456789", min_size=7, max_size=7),
    st.integers(min_value=0, max_value=2),
)
fixed_line = st.builds(
    _phone,
    st.sampled_from(["2", "3", "4", "8", "9"]),
    st.text(alphabet="0123456789", min_size=7, max_size=7),
    st.integers(min_value=0, max_value=2),
)

schemathesis.openapi.format("il-id", israeli_ids)
schemathesis.openapi.format("il-phone", st.one_of(mobile, fixed_line))


# A bank account is valid only as a whole: the account number's check rule depends on the bank
# and the branch, which no schema keyword can relate. A client that knows the rule sends an
# account that passes it; so, in the positive cases only, an onboarding's bank account becomes
# one that passes its bank's rule. The negative cases keep whatever schemathesis broke.
VALID_ACCOUNTS = [
    {"bank": 12, "branch": 571, "account": "041116"},  # Hapoalim, checked
    {"bank": 54, "branch": 1, "account": "1234567"},  # Jerusalem: no check rule
    {"bank": 18, "branch": 1, "account": "123456789"},  # One Zero: no check rule
]


@schemathesis.hook
def map_case(context, case):
    if case.operation.path != "/v1/onboardings" or case.method.upper() != "POST":
        return case
    if case.meta is None or case.meta.generation.mode != schemathesis.GenerationMode.POSITIVE:
        return case
    vendor = case.body.get("vendor") if isinstance(case.body, dict) else None
    if isinstance(vendor, dict) and isinstance(vendor.get("bank_account"), dict):
        chosen = VALID_ACCOUNTS[len(str(vendor.get("external_id", ""))) % len(VALID_ACCOUNTS)]
        vendor["bank_account"] = dict(chosen)
    return case


CEILING = 1_000_000_000  # VENDORFLOW_MAX_AMOUNT_AGOROT's default, which the document states


def _items_total(items):
    try:
        return sum(int(item["quantity"]) * int(item["unit_price_agorot"]) for item in items)
    except (KeyError, TypeError, ValueError):
        return None


def _positive(case):
    return case.meta is not None and case.meta.generation.mode == schemathesis.GenerationMode.POSITIVE


@schemathesis.hook("map_case")
def orders_that_add_up(context, case):
    """Charges and documents have rules across members that no schema keyword relates: the items
    add up to the amount, a document's payments match its type and its items' total, and a
    `vendor_id` in the body is the path's. A client that knows them sends bodies that follow
    them; so, in the positive cases only, the body is made to follow them."""
    if _positive(case):
        _follow_order_rules(case)
    return case


@schemathesis.hook
def before_add_examples(context, examples):
    """The document's examples are positive cases too."""
    for case in examples:
        _follow_order_rules(case)


def _follow_order_rules(case):
    path = case.operation.path
    if case.method.upper() != "POST" or not isinstance(case.body, dict):
        return case
    body = case.body
    if path in ("/v1/vendors/{id}/charges", "/v1/vendors/{id}/documents"):
        body.pop("vendor_id", None)
    if path == "/v1/vendors/{id}/charges":
        items = body.get("items")
        if isinstance(items, list) and items:
            total = _items_total(items)
            if total is None or not 0 < total <= CEILING:
                body["items"] = [{"name": "Vase", "quantity": 1, "unit_price_agorot": body["amount_agorot"]}]
            else:
                body["amount_agorot"] = total
    if path == "/v1/vendors/{id}/documents":
        items = body.get("items")
        total = _items_total(items) if isinstance(items, list) and items else None
        if total is None or not 0 < total <= CEILING:
            body["items"] = [{"name": "Workshop", "quantity": 1, "unit_price_agorot": 30000}]
            total = 30000
        body["document_type"] = "invoice_and_receipt"
        body["payments"] = [{"amount_agorot": total, "method": "cash"}]
    return case
