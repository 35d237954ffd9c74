"""An RFC 3161 time-stamping authority asked over HTTP for the token of a PAdES B-T signature.

pyHanko's own HTTP client passes the authority's failures on as the HTTP library's text
(or, for a reply to another request, fails while wording it); here every failure says what
the authority did: refused the connection, answered HTTP 500 or an HTML page, refused the
request with its stated reason, sent a reply to another request (nonce or imprint), or
signed with a certificate that is not a TSA's. Nothing is signed with such a token.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from asn1crypto import cms, core, tsp
from cryptography import x509
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import extract_ts_certs, set_tsp_headers
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from drtests.errors import DRError

REPLY_TYPE = "application/timestamp-reply"


class TimestampFailed(DRError):
    """The authority gave no usable time stamp; the message says what it did."""


def check_authority_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DRError(f"--tsa {url!r}: not an http:// or https:// URL of a time-stamping authority")
    return url


def lacks_time_stamping_usage(cert: Any) -> bool:
    """RFC 3161 §2.3: a TSA's certificate carries the timeStamping extended key usage."""
    usages = cert.extended_key_usage_value
    return usages is None or "time_stamping" not in usages.native


class AuthorityTimeStamper(TimeStamper):
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.url = check_authority_url(url)
        self.timeout = timeout

    def _post(self, body: bytes) -> bytes:
        import requests

        try:
            answer = requests.post(
                self.url, body, headers=set_tsp_headers({}), timeout=self.timeout
            )
        except requests.Timeout:
            raise TimestampFailed(f"no answer within {self.timeout:g}s") from None
        except requests.exceptions.SSLError as exc:
            raise TimestampFailed(f"no TLS handshake ({_root_cause(exc)})") from None
        except (requests.RequestException, OSError) as exc:
            raise TimestampFailed(f"unreachable ({_root_cause(exc)})") from None
        if answer.status_code != 200:
            raise TimestampFailed(f"answered HTTP {answer.status_code} {answer.reason}".strip())
        kind = answer.headers.get("Content-Type", "").split(";")[0].strip()
        if kind != REPLY_TYPE:
            raise TimestampFailed(
                f"answered {kind or 'without a content type'}, not a time-stamp reply "
                f"({REPLY_TYPE})"
            )
        if not answer.content:
            raise TimestampFailed("answered an empty body, not a time-stamp reply")
        return bytes(answer.content)

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        raw = await asyncio.to_thread(self._post, req.dump())
        try:
            response = tsp.TimeStampResp.load(raw)
            response["status"].native  # noqa: B018 (parsed now, not while signing)
        except (ValueError, TypeError, KeyError) as exc:
            # asn1crypto wants the token even where RFC 3161 leaves it out (a refusal): the
            # status alone, read from the reply's first element, says why
            status = _status_alone(raw)
            if status is not None and status["status"].native != "granted":
                raise TimestampFailed(_refusal(status)) from None
            raise TimestampFailed(f"its reply is not a readable time-stamp reply ({exc})") from None
        return response

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        nonce, request = self.request_cms(message_digest, md_algorithm)  # type: ignore[no-untyped-call]
        response = await self.async_request_tsa_response(request)
        if response["status"]["status"].native != "granted":
            raise TimestampFailed(_refusal(response["status"]))
        try:
            token = response["time_stamp_token"]
            info = token["content"]["encap_content_info"]["content"].parsed
            info.native  # noqa: B018 (parsed now, not while the PDF is being written)
        except (ValueError, TypeError, KeyError) as exc:
            raise TimestampFailed(f"granted the request without a readable token ({exc})") from None
        if nonce is not None and info["nonce"].native != nonce:
            raise TimestampFailed(
                "its reply answers another request (nonce mismatch: a replayed or cached reply)"
            )
        if info["message_imprint"]["hashed_message"].native != message_digest:
            raise TimestampFailed("its token stamps another document (message imprint mismatch)")
        store = SimpleCertificateStore()  # type: ignore[no-untyped-call]
        # its signature only: whose it is and whether to trust it is for verification
        context = ValidationContext(trust_roots=[], allow_fetching=False)
        checked = await validate_tst_signed_data(
            token["content"], context, lambda _: message_digest
        )
        if not (checked["intact"] and checked["valid"]):
            raise TimestampFailed("its token's signature does not verify (forged or damaged)")
        signers = list(extract_ts_certs(token, store))
        if not signers:
            raise TimestampFailed("its token carries no certificate of the authority")
        if lacks_time_stamping_usage(signers[0]):
            raise TimestampFailed(
                f"its certificate ({subject_of(signers[0])}) lacks the timeStamping "
                "extended key usage RFC 3161 requires of a TSA"
            )
        return token


def _status_alone(raw: bytes) -> tsp.PKIStatusInfo | None:
    try:
        status = tsp.PKIStatusInfo.load(core.Sequence.load(raw)[0].dump())
        status.native  # noqa: B018
    except (ValueError, TypeError, KeyError, IndexError):
        return None
    return status


def _refusal(status: tsp.PKIStatusInfo) -> str:
    """The authority's own words: its status, statusString and failInfo."""
    said = "; ".join(status["status_string"].native or []) or "no reason given"
    fail = ", ".join(sorted(status["fail_info"].native or []))
    return f"refused the request ({status['status'].native}: {said}" + (
        f"; {fail})" if fail else ")"
    )


def subject_of(cert: Any) -> str:
    """An asn1crypto certificate's subject as the rest of the suite writes names (RFC 4514)."""
    return x509.load_der_x509_certificate(cert.dump()).subject.rfc4514_string()


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of the HTTP client's chain of errors (requests wraps urllib3's,
    which wraps the socket's or http.client's), on one line."""
    for _ in range(10):
        inner = exc.__cause__ or next(
            (a for a in (*exc.args, getattr(exc, "reason", None)) if isinstance(a, BaseException)),
            None,
        )
        if inner is None:
            break
        exc = inner
    text = str(exc) or type(exc).__name__
    found = text.find("[Errno")
    return (text[found:] if found >= 0 else text).splitlines()[0][:200]
