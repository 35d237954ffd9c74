"""Signatures on a run's evidence: a PAdES signature on the PDF (pyHanko) and a detached
signature of the manifest head, each checkable without drtests.

Nothing of the signed folder changes: the signatures go to ``signature/`` beside it, which
the manifest leaves out (a signature cannot be part of what it signs).

- ``signature/report.signed.pdf``: ``report.pdf`` plus an incremental PAdES signature
  (B-B; B-T with the token of an RFC 3161 time-stamping authority, so the time of signing
  is not only the signer's word); its signed revision is byte for byte the manifest's
  ``report.pdf``.
- ``signature/manifest-head.txt`` and ``manifest-head.sig``: the head and its SHA-256
  signature as ``openssl dgst -sha256 -sign`` makes it (RSA PKCS#1 v1.5 or ECDSA).
- ``signature/signer.pem``: the signer's certificate.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from drtests.errors import DRError
from drtests.evidence.archival import archival_facts
from drtests.evidence.manifest import (
    CHAINED_LAST,
    SIGNATURES,
    Problem,
    recorded_evidence_head,
    recorded_head,
    verify_manifest,
)

SIGNED_PDF = "report.signed.pdf"
HEAD_TEXT = "manifest-head.txt"
HEAD_SIGNATURE = "manifest-head.sig"
SIGNER_CERT = "signer.pem"
PASSPHRASE_ENV = "DRTESTS_KEY_PASSPHRASE"  # noqa: S105 (the variable's name)


@dataclass(frozen=True)
class Signed:
    folder: Path
    head: str
    signer: str


SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _load_key(key_file: Path, passphrase: bytes | None) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), passphrase)
    except FileNotFoundError:
        raise DRError(f"signing key {key_file}: no such file") from None
    except IsADirectoryError:
        raise DRError(f"signing key {key_file}: a directory, not a key file") from None
    except TypeError as exc:
        if passphrase is not None:  # "Password was given but private key is not encrypted"
            raise DRError(
                f"signing key {key_file} is not encrypted: unset ${PASSPHRASE_ENV}"
            ) from None
        raise DRError(
            f"signing key {key_file} is encrypted: put its passphrase in ${PASSPHRASE_ENV}"
        ) from exc
    except ValueError as exc:
        raise DRError(
            f"signing key {key_file}: not a PEM private key, or a wrong passphrase "
            f"({str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        kind = type(key).__name__
        raise DRError(f"signing key {key_file}: an RSA or EC key is needed, not {kind}")
    return key


def _load_certs(path: Path, what: str) -> list[x509.Certificate]:
    """Every certificate of a PEM file (a CA bundle may hold several)."""
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except FileNotFoundError:
        raise DRError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise DRError(f"{what} {path}: a directory, not a PEM file") from None
    except ValueError:
        raise DRError(f"{what} {path}: no PEM X.509 certificate in it") from None


def _load_cert(cert_file: Path) -> x509.Certificate:
    return _load_certs(cert_file, "certificate")[0]


def _sign_bytes(key: SigningKey, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _verify_bytes(cert: x509.Certificate, signature: bytes, data: bytes) -> bool:
    public = cert.public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def sign_run(folder: Path, key_file: Path, cert_file: Path, tsa_url: str | None = None) -> Signed:
    """Sign an intact run folder; refuses one whose files differ from its manifest. With
    ``tsa_url`` the PDF signature carries that authority's time stamp (PAdES B-T)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    from drtests.evidence.timestamping import AuthorityTimeStamper, TimestampFailed

    if not folder.is_dir():
        raise DRError(f"{folder}: not a run folder (no such directory)")
    problems = verify_manifest(folder) + check_pdf_names_its_evidence(folder)
    if problems:
        raise DRError(f"{folder}: not signing evidence that fails verification: {problems[0]}")
    head = recorded_head(folder)
    if head is None:  # verify_manifest would have said so
        raise DRError(f"{folder}: no manifest head")
    key = _load_key(key_file, _passphrase())
    cert = _load_cert(cert_file)
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise DRError(f"certificate {cert_file} is not the certificate of key {key_file}")
    if reason := _unusable(cert):  # verification would reject it: refuse now, not later
        raise DRError(f"certificate {cert_file} cannot sign evidence: {reason}")
    stamper = AuthorityTimeStamper(tsa_url) if tsa_url is not None else None
    out = folder / SIGNATURES
    if out.exists():
        raise DRError(
            f"{folder}: already signed ({SIGNATURES}/ exists): move it out of the folder to "
            "sign again"
        )
    signer = signers.SimpleSigner.load(  # type: ignore[no-untyped-call]
        str(key_file), str(cert_file), key_passphrase=_passphrase()
    )
    if signer is None:
        raise DRError(f"pyHanko could not load {key_file} with {cert_file}")
    meta = signers.PdfSignatureMetadata(
        field_name="EvidenceSignature",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=f"DR evidence, manifest head {head}",
    )
    # written aside and moved in whole: an interrupted signing leaves no half signature
    partial = Path(tempfile.mkdtemp(prefix=".signature-", dir=folder.parent))
    try:
        with (
            (folder / CHAINED_LAST).open("rb") as source,
            (partial / SIGNED_PDF).open("wb") as target,
        ):
            try:
                with _pyhanko_logs_kept():
                    signers.sign_pdf(
                        IncrementalPdfFileWriter(source),
                        meta,
                        signer=signer,
                        timestamper=stamper,
                        output=target,
                    )
            except TimestampFailed as exc:
                raise DRError(
                    f"time-stamping authority {tsa_url}: {exc}; nothing was signed"
                ) from None
        text = f"{head}\n".encode()
        (partial / HEAD_TEXT).write_bytes(text)
        (partial / HEAD_SIGNATURE).write_bytes(_sign_bytes(key, text))
        (partial / SIGNER_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        partial.chmod(0o755)
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Signed(out, head, cert.subject.rfc4514_string())


def check_pdf_names_its_evidence(folder: Path) -> list[Problem]:
    """The head printed in the PDF is the manifest's chain up to the PDF."""
    pdf = folder / CHAINED_LAST
    if not pdf.exists():
        return []
    try:
        printed = archival_facts(pdf)["evidence_head"]
    except Exception as exc:  # pikepdf's errors: the file is not a readable PDF
        return [Problem("unreadable", CHAINED_LAST, str(exc).splitlines()[0][:200])]
    recorded = recorded_evidence_head(folder)
    if printed and recorded and printed != recorded:
        return [
            Problem(
                "pdf-mismatch",
                CHAINED_LAST,
                f"names evidence head {printed[:16]}…, the manifest {recorded[:16]}…",
            )
        ]
    return []


SIGNATURE_FILES = (SIGNED_PDF, HEAD_TEXT, HEAD_SIGNATURE, SIGNER_CERT)


def load_trust(path: Path) -> list[x509.Certificate]:
    """The anchors of ``--trust``: one certificate or a bundle."""
    return _load_certs(path, "--trust")


def verify_signatures(
    folder: Path, trust: list[x509.Certificate] | None
) -> tuple[list[Problem], list[str]]:
    """Problems with ``signature/``, and what was verified; nothing when it is absent.

    Without ``trust`` the signer's own certificate is taken as the anchor and the result
    says so: the signatures prove integrity, not who signed.
    """
    sig_dir = folder / SIGNATURES
    if not sig_dir.is_dir():
        return [], []
    problems = [
        Problem("added", f"{SIGNATURES}/{p.name}")
        for p in sorted(sig_dir.iterdir())
        if p.name not in SIGNATURE_FILES
    ]
    try:
        signer = _load_cert(sig_dir / SIGNER_CERT)
    except DRError as exc:
        return [
            *problems,
            Problem("signature-invalid", f"{SIGNATURES}/{SIGNER_CERT}", str(exc)),
        ], []
    anchors = trust or [signer]
    if (
        trust is not None
        and signer not in trust
        and not any(_issued_by(signer, anchor) for anchor in trust)
    ):
        names = "; ".join(a.subject.rfc4514_string() for a in trust)
        problems.append(
            Problem("signature-untrusted", f"{SIGNATURES}/{SIGNER_CERT}", f"not issued by {names}")
        )
    if reason := _unusable(signer):
        problems.append(Problem("signature-untrusted", f"{SIGNATURES}/{SIGNER_CERT}", reason))
    problems += _verify_head_signature(folder, signer)
    pdf_problems, stamp, stamp_problems = _verify_pdf_signature(
        folder, signer, anchors, trust is not None
    )
    if any(p.path.endswith(SIGNER_CERT) and p.kind == "signature-untrusted" for p in problems):
        # pyHanko's path-building failure says the same of the PDF, in other words
        pdf_problems = [p for p in pdf_problems if p.kind != "signature-untrusted"]
    problems += pdf_problems
    notes: list[str] = []
    if not problems:  # the signer's checks hold, whatever the time stamp's say
        notes.append(f"manifest head and PDF signed by {signer.subject.rfc4514_string()}")
        if trust is None:
            notes.append("certificates not checked against a trust anchor (--trust)")
    if stamp and not stamp_problems:
        notes.append(stamp)
    problems += stamp_problems
    return problems, notes


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _unusable(cert: x509.Certificate) -> str | None:
    """Why a certificate may not sign evidence: outside its validity, or not for
    signatures (PAdES signers need digitalSignature or nonRepudiation)."""
    now = datetime.now(UTC)
    if now > cert.not_valid_after_utc:
        return f"expired {cert.not_valid_after_utc:%Y-%m-%d}"
    if now < cert.not_valid_before_utc:
        return f"not valid before {cert.not_valid_before_utc:%Y-%m-%d}"
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not (usage.digital_signature or usage.content_commitment):
        return "its key usage allows neither digitalSignature nor nonRepudiation"
    return _not_for_documents(cert)


#: extended key usages under which PDF readers accept a document signer (RFC 9336's
#: documentSigning, S/MIME's emailProtection, Adobe's and Microsoft's document signing, any)
DOCUMENT_SIGNING_USAGES = {
    "1.3.6.1.5.5.7.3.36",
    "1.3.6.1.5.5.7.3.4",
    "1.2.840.113583.1.1.5",
    "1.3.6.1.4.1.311.10.3.12",
    "2.5.29.37.0",
}


def _not_for_documents(cert: x509.Certificate) -> str | None:
    """A certificate whose extended key usage is restricted to other purposes (a TSA's, a
    TLS server's) is refused by readers that check it, as ``openssl cms -verify`` does."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if any(u.dotted_string in DOCUMENT_SIGNING_USAGES for u in usages):
        return None
    names = ", ".join(getattr(u, "_name", u.dotted_string) for u in usages)
    return f"its extended key usage ({names}) does not include signing documents"


def _verify_head_signature(folder: Path, signer: x509.Certificate) -> list[Problem]:
    sig_dir = folder / SIGNATURES
    try:
        text = (sig_dir / HEAD_TEXT).read_bytes()
        signature = (sig_dir / HEAD_SIGNATURE).read_bytes()
    except FileNotFoundError as exc:
        return [Problem("signature-missing", f"{SIGNATURES}/{Path(str(exc.filename)).name}")]
    problems = []
    if not _verify_bytes(signer, signature, text):
        problems.append(
            Problem(
                "signature-invalid",
                f"{SIGNATURES}/{HEAD_SIGNATURE}",
                f"not a signature of {HEAD_TEXT} by {SIGNER_CERT}'s key",
            )
        )
    if text.decode(errors="replace").strip() != recorded_head(folder):
        problems.append(
            Problem(
                "signature-mismatch",
                f"{SIGNATURES}/{HEAD_TEXT}",
                "the signed head is not the manifest's head",
            )
        )
    return problems


class _Reasons(logging.Handler):
    """pyHanko logs why a certificate path failed (with a traceback) instead of returning
    it: kept as the problem's reason, never printed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.messages.append(str(record.exc_info[1]).splitlines()[0])
        elif record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage().splitlines()[0])


@contextmanager
def _pyhanko_logs_kept() -> Iterator[_Reasons]:
    """While pyHanko works, what it logs (path-building failures, with tracebacks) is kept
    as reasons instead of reaching the user's terminal."""
    reasons = _Reasons()
    logger = logging.getLogger("pyhanko")
    propagate = logger.propagate
    logger.addHandler(reasons)
    logger.propagate = False
    try:
        yield reasons
    finally:
        logger.removeHandler(reasons)
        logger.propagate = propagate


def _verify_pdf_signature(
    folder: Path, signer: x509.Certificate, anchors: list[x509.Certificate], trust_given: bool
) -> tuple[list[Problem], str | None, list[Problem]]:
    """The PDF signature's problems, what its time stamp says (None: it has none) and the
    time stamp's own problems."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    from drtests.evidence.timestamping import lacks_time_stamping_usage, subject_of

    where = f"{SIGNATURES}/{SIGNED_PDF}"
    path = folder / SIGNATURES / SIGNED_PDF
    if not path.exists():
        return [Problem("signature-missing", where)], None, []
    signed = path.read_bytes()
    try:
        original = (folder / CHAINED_LAST).read_bytes()
    except FileNotFoundError:
        return [Problem("signature-mismatch", where, f"{CHAINED_LAST} is gone")], None, []
    roots = [
        asn1_x509.Certificate.load(a.public_bytes(serialization.Encoding.DER)) for a in anchors
    ]
    try:
        with _pyhanko_logs_kept() as reasons, path.open("rb") as handle:
            reader = PdfFileReader(handle)
            embedded = reader.embedded_signatures
            if not embedded:
                return (
                    [Problem("signature-missing", where, "the PDF carries no signature")],
                    None,
                    [],
                )
            embedded_signer = embedded[0].signer_cert.dump()
            status = validate_pdf_signature(
                embedded[0],
                ValidationContext(trust_roots=roots, allow_fetching=False),
                key_usage_settings=KeyUsageConstraints(
                    key_usage={"digital_signature", "non_repudiation"},
                    match_all_key_usages=False,
                ),
            )
    except Exception as exc:  # pyHanko's errors: a damaged signature or file
        return [Problem("signature-invalid", where, str(exc).splitlines()[0][:200])], None, []
    problems = []
    other_signer = embedded_signer != signer.public_bytes(serialization.Encoding.DER)
    if other_signer:  # then the PDF's trust was judged against the wrong anchor: not its fault
        problems.append(
            Problem(
                "signature-mismatch",
                f"{SIGNATURES}/{SIGNER_CERT}",
                "not the certificate the PDF was signed with",
            )
        )
    if not (status.intact and status.valid):
        problems.append(Problem("signature-invalid", where, "the signed bytes were changed"))
    elif not status.trusted and not (other_signer and anchors == [signer]):
        why = reasons.messages[0] if reasons.messages else status.summary()  # the signer's
        problems.append(Problem("signature-untrusted", where, why[:200]))
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        problems.append(Problem("signature-mismatch", where, "changed after it was signed"))
    if not signed.startswith(original):
        problems.append(
            Problem("signature-mismatch", where, f"what was signed is not this {CHAINED_LAST}")
        )
    stamp = status.timestamp_validity
    if stamp is None:
        return problems, None, []
    authority = subject_of(stamp.signing_cert)
    by = f"time stamp by {authority}"
    stamp_problems = []
    if not stamp.intact:
        stamp_problems.append(
            Problem("signature-invalid", where, f"{by}: stamps another signature (imprint)")
        )
    elif not stamp.valid:
        stamp_problems.append(
            Problem("signature-invalid", where, f"{by}: its signature does not verify")
        )
    elif lacks_time_stamping_usage(stamp.signing_cert):  # no trust anchor needed to see it
        stamp_problems.append(
            Problem(
                "signature-untrusted", where, f"{by}: not a TSA's certificate (no timeStamping EKU)"
            )
        )
    elif not stamp.trusted and trust_given:
        stamp_problems.append(Problem("signature-untrusted", where, f"{by}: not a trusted TSA"))
    stamped = f"{stamp.timestamp.isoformat()} by {authority}"
    return problems, f"time-stamped {stamped} (PAdES B-T)", stamp_problems
