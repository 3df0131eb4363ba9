"""How every Stripe request is made: with back-off on 429 (never sooner than Stripe's
Retry-After), and with stripe-python's exceptions turned into AdapterError the engine
understands. The rate limiter sits one level down, in the HTTP client
(integration/stripe_http.py), so that every request on the wire takes a token.

Also the metadata tags Slotguard puts on Stripe objects, and the key=value log helper.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import stripe

from slotguard.domain.interfaces import AdapterError

log = logging.getLogger("slotguard.stripe")

ACTION_TAG = "slotguard_action_id"  # on PaymentIntents, Refunds and Checkout Sessions
CLIENT_TAG = "slotguard_client"  # on Customers (and the above): the client's email, lower case
PURPOSE_TAG = "slotguard_purpose"  # on card-setup Checkout Sessions


def log_event(level: int, event: str, **fields: Any) -> None:
    """Log "event key=value ..." (empty values left out). Callers pass ids, never secrets."""
    parts = []
    for key, value in fields.items():
        if value is None or value == "":
            continue
        text = str(value)
        parts.append(f'{key}="{text}"' if " " in text else f"{key}={text}")
    log.log(level, "%s %s", event, " ".join(parts))


def plain(obj: Any) -> dict:
    """A Stripe object as a plain dict (nested objects too)."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class AmountRefused(Exception):
    """Stripe answered amount_too_small: below its minimum in the settlement currency."""


def retry_after_seconds(headers: Mapping[str, str] | None, now: Callable[[], float] = time.time) -> float | None:
    """The wait a response's Retry-After header asks for, in seconds (delta-seconds or an
    HTTP date), or None when there is no readable header."""
    if not headers:
        return None
    value = next((str(v).strip() for k, v in headers.items() if str(k).lower() == "retry-after"), "")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(seconds, 0.0) if seconds == seconds else None  # NaN is no answer


class StripeCalls:
    """Makes Stripe requests for the provider. Thread-safe.

    `rate_limit_retries` 429 answers in a row are retried, then given up as a retryable
    error. The wait before each retry is the Retry-After header lengthened by up to
    `RETRY_AFTER_JITTER` (never shorter: going back early earns another 429 and tells Stripe
    we do not listen), or without the header exponential back-off from `backoff_seconds`
    with +-25 % jitter, at most `max_wait`. A Retry-After longer than `max_wait` is not slept
    here: the error carries it (`AdapterError.retry_after`) so the engine waits it out.
    """

    RETRY_AFTER_JITTER = 0.25

    def __init__(
        self,
        *,
        rate_limit_retries: int = 4,
        backoff_seconds: float = 0.5,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rate_limit_retries = rate_limit_retries
        self.backoff_seconds = backoff_seconds
        self.max_wait = max_wait
        self._sleep = sleep

    def rate_limit_wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt + 1` of a rate-limited request."""
        if retry_after is not None:
            return retry_after * (1.0 + self.RETRY_AFTER_JITTER * random.random())
        return min(self.backoff_seconds * 2**attempt, self.max_wait) * (0.75 + random.random() / 2)

    def call(self, what: str, method: Callable[..., Any], *args: Any) -> Any:
        """Return `method(*args)`. `what` names the call in messages ("refund").

        Raises stripe.CardError unchanged (the caller turns it into needs_client_action),
        AmountRefused, or AdapterError: retryable for network trouble, 5xx and persistent
        429; not retryable for a rejected key, missing permission or a refused request.
        """
        attempt = 0
        while True:
            try:
                return method(*args)
            except stripe.RateLimitError as error:
                retry_after = retry_after_seconds(error.headers)
                if attempt >= self.rate_limit_retries or (retry_after is not None and retry_after > self.max_wait):
                    raise AdapterError(f"Stripe is rate limiting requests ({what}); will retry later", retryable=True,
                                       retry_after=retry_after) from None
                delay = self.rate_limit_wait(attempt, retry_after)
                attempt += 1
                log_event(logging.WARNING, "stripe.rate_limited", call=what, attempt=attempt, sleep=f"{delay:.2f}")
                self._sleep(delay)
            except stripe.CardError:
                raise
            except stripe.AuthenticationError:
                # Stripe's own message quotes part of the key; ours does not.
                raise AdapterError("Stripe did not accept payments.secret_key; check the key in the Stripe dashboard", retryable=False) from None
            except stripe.PermissionError:
                raise AdapterError(f"the Stripe key is not allowed to do this ({what}); give the restricted key write access to it", retryable=False) from None
            except stripe.IdempotencyError as error:
                raise AdapterError(f"Stripe refused a repeated {what} with different parameters: {error.user_message}", retryable=False) from None
            except stripe.InvalidRequestError as error:
                if error.code == "amount_too_small":
                    raise AmountRefused(f"Stripe refused the amount as below its minimum: {error.user_message}") from None
                raise AdapterError(f"Stripe refused the {what}: {error.user_message}", retryable=False) from None
            except stripe.APIConnectionError:
                raise AdapterError(f"could not reach Stripe ({what}); will retry", retryable=True) from None
            except stripe.StripeError as error:
                raise AdapterError(f"Stripe failed ({what}, HTTP {error.http_status}); will retry", retryable=True) from None

    def list_all(self, what: str, method: Callable[..., Any], params: dict[str, Any]) -> list[dict]:
        """Every item of a Stripe list, following `has_more` pages, as plain dicts."""
        page = self.call(what, method, params)
        items = [plain(item) for item in page.data]
        while page.has_more and items:
            page = self.call(what, method, {**params, "starting_after": items[-1]["id"]})
            items.extend(plain(item) for item in page.data)
        return items
