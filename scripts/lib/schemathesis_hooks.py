"""schemathesis hooks for scripts/schemathesis (loaded through scripts/lib/schemathesis.toml): the
cases and failures the OpenAPI document cannot describe, each with its reason.

A continuation token is opaque: only a token the listing itself returned is valid, and no schema
can say which. Generated cases that carry one (valid or not by the schema) are skipped rather
than judged; the Rust tests cover tokens (functions/tests/api_page_tokens.rs: forged, edited and
foreign tokens are 400, real ones page without gaps).

An order's status moves only along its lifecycle (shared/src/domain/order.rs,
OrderStatus::allowed_next): the schema gives the five statuses, not which one is legal next for
a given order, so a generated status change is mostly a 409. The hooks below remember each
order's status (the run's own order, $SCHEMATHESIS_ORDER, starts pending; then as the API's own
answers show it), and give positive status changes of a known order a legal next status;
If-Match stays as schemathesis chose it (the document's links carry the ETag of an answer into
it), and the server still checks it.

NotificationsNegotiate (POST /notifications/negotiate) takes the caller's own SignalR user id in
x-ms-signalr-userid (API Management sets it from the token): positive cases get the id of the
token they are sent with. Without the header the host's signalRConnectionInfo binding fails
before the app runs (500), which API Management never lets happen; that 500 is not counted.
"""

import base64
import json
import os
import random
import threading
import urllib.request

import schemathesis


@schemathesis.hook
def filter_query(context, query):
    return not (query and "continuation" in query)


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure but use-after-free (ST301) reads under an erased customer or of a
    cancelled order.

    DELETE /customers/{id} is a GDPR erasure *request* (202 Accepted), not the removal of a
    resource: the customer is erased in place (personal data masked, the record kept with status
    `erasureRequested`, then `erased`, for bookkeeping and the audit trail), its orders stay
    (masked) for the accounts, and the request's status monitor lives under the customer, at
    /customers/{id}/gdpr/erasure/{requestId}. So reads under /customers/{id} are meant to answer
    after the DELETE. DELETE /orders/{id} cancels the order: it stays, with status `cancelled`
    and its history, so reads under /orders/{id} answer after it too. Any ST301 elsewhere still
    fails.
    """
    if _negotiate_without_user_id(case, response) or _negotiate_given_its_user_id(case, failure, response):
        return False
    if getattr(failure, "code", None) != "ST301" or case.method.upper() != "GET":
        return True
    path = case.operation.path
    return "/customers/{id}" not in path and "/orders/{id}" not in path


SIGNALR_USER_HEADER = "x-ms-signalr-userid"


def _negotiate_without_user_id(case, response):
    """A 500 of the negotiate for a request without the user id header: the binding's failure."""
    if case.operation.definition.raw.get("operationId") != "negotiateNotifications":
        return False
    headers = {k.lower(): v for k, v in (response.request.headers or {}).items()} if response is not None else {}
    return response is not None and response.status_code == 500 and not headers.get(SIGNALR_USER_HEADER)


def _user_id_of(authorization):
    """The SignalR user id API Management derives from a bearer token (see README)."""
    try:
        payload = authorization.split(" ", 1)[1].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, AttributeError):
        return None
    tenant = claims.get("tenant_id")
    if claims.get("extension_customerId"):
        return f"{tenant}:customer:{claims['extension_customerId']}"
    return f"{tenant}:employee:{claims.get('oid') or claims.get('sub')}"


def _give_negotiate_its_user_id(case):
    """The run's token ($SCHEMATHESIS_BEARER) gives positive negotiate cases their user id."""
    if case.operation.definition.raw.get("operationId") != "negotiateNotifications":
        return
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive:
        return
    user_id = _user_id_of("Bearer " + os.environ.get("SCHEMATHESIS_BEARER", ""))
    if user_id:
        headers = case.headers if isinstance(case.headers, dict) else {}
        for key in [k for k in headers if k.lower() == SIGNALR_USER_HEADER]:
            del headers[key]
        headers[SIGNALR_USER_HEADER] = user_id
        case.headers = headers


def _negotiate_given_its_user_id(case, failure, response):
    """ST201 (a negative case accepted) on a negotiate the hook gave the token's own user id: the
    case schemathesis generated as negative for this header is no longer negative once the hook
    replaced the header, so its 200 is right."""
    if getattr(failure, "code", None) != "ST201" or response is None:
        return False
    if case.operation.definition.raw.get("operationId") != "negotiateNotifications":
        return False
    sent = {k.lower(): v for k, v in (response.request.headers or {}).items()}.get(SIGNALR_USER_HEADER)
    return sent is not None and sent == _user_id_of("Bearer " + os.environ.get("SCHEMATHESIS_BEARER", ""))


@schemathesis.hook
def map_case(context, case):
    """Gives positive cases a phone number that exists.

    A phone number is valid only if it exists in its country's numbering plan (libphonenumber's
    metadata): the schema can give its form (E.164) but not that, so a generated `+` and 8 to 15
    digits is mostly refused. Positive cases get a real number instead; negative cases keep what
    was generated (a refusal is what they expect).
    """
    _give_a_real_phone(case)
    _give_negotiate_its_user_id(case)
    _give_order_an_active_customer(case)
    return case


# The customer createOrder's positive cases name ($SCHEMATHESIS_ORDER_CUSTOMER, made by
# scripts/schemathesis for the run). Erasure requests (DELETE /customers/{id}) reach every
# customer of the tenant through the listings' links, and an order for an erased customer is
# rightly refused (409 Customer Not Active): once that happened, a run could end without a single
# createOrder answering 2xx. So a positive createOrder case whose customer is no longer active gets
# a new, active one, made with the admin token the script passes ($SCHEMATHESIS_ADMIN).
_ORDER_CUSTOMER_OF_RUN = os.environ.get("SCHEMATHESIS_ORDER_CUSTOMER", "")
_order_customer = {"id": _ORDER_CUSTOMER_OF_RUN}
_order_customer_lock = threading.Lock()


def _api(method, path, body=None):
    request = urllib.request.Request(
        os.environ["SCHEMATHESIS_BASE"] + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + os.environ["SCHEMATHESIS_ADMIN"], "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _active_order_customer():
    with _order_customer_lock:
        current = _order_customer["id"]
        try:
            if current and _api("GET", f"/api/v1/customers/{current}").get("status") == "active":
                return current
            created = _api("POST", "/api/v1/customers", {"name": "Order Taker", "email": "orders@example.org"})
        except (OSError, ValueError, KeyError):
            return current
        _order_customer["id"] = created.get("id", current)
        return _order_customer["id"]


def _give_order_an_active_customer(case):
    if case.operation.definition.raw.get("operationId") != "createOrder":
        return
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return
    named = case.body.get("customerId")
    if named in (_ORDER_CUSTOMER_OF_RUN, _order_customer["id"]) and "SCHEMATHESIS_ADMIN" in os.environ:
        case.body["customerId"] = _active_order_customer()


def _give_a_real_phone(case):
    meta = getattr(case, "meta", None)
    positive = meta is not None and meta.generation.mode.is_positive
    if positive and isinstance(case.body, dict) and isinstance(case.body.get("phone"), str):
        case.body["phone"] = "+442079460001"


# OrderStatus::allowed_next (shared/src/domain/order.rs).
NEXT_STATUSES = {
    "pending": ("confirmed", "cancelled"),
    "confirmed": ("shipped", "cancelled"),
    "shipped": ("delivered",),
    "delivered": (),
    "cancelled": (),
}
# Operations whose 2xx body is an order, or a page of them.
ORDER_ANSWERS = {"createOrder", "getOrder", "changeOrderStatus", "cancelOrder"}
ORDER_PAGES = {"listOrders", "listCustomerOrders"}

# The run's own order (scripts/schemathesis creates it pending), then what the answers show.
_order_status = {os.environ["SCHEMATHESIS_ORDER"]: "pending"} if os.environ.get("SCHEMATHESIS_ORDER") else {}
_order_status_lock = threading.Lock()


def _remember(order):
    if isinstance(order, dict) and isinstance(order.get("id"), str) and order.get("status") in NEXT_STATUSES:
        with _order_status_lock:
            _order_status[order["id"]] = order["status"]


@schemathesis.hook
def after_call(context, case, response):
    """Remembers the status of every order a 2xx answer of this run showed."""
    operation_id = case.operation.definition.raw.get("operationId")
    if not 200 <= response.status_code < 300 or operation_id not in ORDER_ANSWERS | ORDER_PAGES:
        return
    try:
        body = response.json()
    except Exception:
        return
    if operation_id in ORDER_PAGES and isinstance(body, dict):
        for order in body.get("items") or ():
            _remember(order)
    else:
        _remember(body)


@schemathesis.hook
def before_call(context, case, kwargs):
    """Gives a positive status change of an order this run has seen a legal next status,
    positive cases of the stateful phase (which `map_case` does not see) a real phone number, and
    positive negotiate cases the user id of their token.

    Mostly the next step forward (so an order goes through its lifecycle), a cancellation one
    time in four. Negative cases, orders never seen and orders in a final status keep what was
    generated.
    """
    _give_a_real_phone(case)
    _give_negotiate_its_user_id(case)
    if case.operation.definition.raw.get("operationId") != "changeOrderStatus":
        return
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return
    with _order_status_lock:
        current = _order_status.get((case.path_parameters or {}).get("id"))
    allowed = NEXT_STATUSES.get(current, ())
    if allowed and case.body.get("status") not in allowed:
        cancel = "cancelled" in allowed and random.random() < 0.25
        case.body["status"] = "cancelled" if cancel else allowed[0]
