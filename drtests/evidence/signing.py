"""Signatures on a run's evidence: a PAdES signature on the PDF (pyHanko) and a detached
signature of the manifest head, each checkable without drtests.

Nothing of the signed folder changes: the signatures go to ``signature/`` beside it, which
the manifest leaves out (a signature cannot be part of what it signs).

- ``signature/report.signed.pdf``: ``report.pdf`` plus an incremental PAdES B-B signature;
  its signed revision is byte for byte the manifest's ``report.pdf``.
- ``signature/manifest-head.txt`` and ``manifest-head.sig``: the head and its SHA-256
  signature as ``openssl dgst -sha256 -sign`` makes it (RSA PKCS#1 v1.5 or ECDSA).
- ``signature/signer.pem``: the signer's certificate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    except TypeError:
        raise DRError(
            f"signing key {key_file} is encrypted: put its passphrase in ${PASSPHRASE_ENV}"
        ) from None
    except ValueError as exc:
        raise DRError(
            f"signing key {key_file}: not a PEM private key, or a wrong passphrase "
            f"({str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        kind = type(key).__name__
        raise DRError(f"signing key {key_file}: an RSA or EC key is needed, not {kind}")
    return key


def _load_cert(cert_file: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_file.read_bytes())
    except FileNotFoundError:
        raise DRError(f"certificate {cert_file}: no such file") from None
    except ValueError:
        raise DRError(f"certificate {cert_file}: not a PEM X.509 certificate") from None


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


def sign_run(folder: Path, key_file: Path, cert_file: Path) -> Signed:
    """Sign an intact run folder; refuses one whose files differ from its manifest."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

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
    out = folder / SIGNATURES
    out.mkdir(exist_ok=True)
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
    with (folder / CHAINED_LAST).open("rb") as source, (out / SIGNED_PDF).open("wb") as target:
        signers.sign_pdf(IncrementalPdfFileWriter(source), meta, signer=signer, output=target)
    text = f"{head}\n".encode()
    (out / HEAD_TEXT).write_bytes(text)
    (out / HEAD_SIGNATURE).write_bytes(_sign_bytes(key, text))
    (out / SIGNER_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
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


def verify_signatures(folder: Path, trust: Path | None) -> tuple[list[Problem], list[str]]:
    """Problems with ``signature/``, and what was verified; nothing when it is absent.

    Without ``trust`` the signer's own certificate is taken as the anchor and the result
    says so: the signatures prove integrity, not who signed.
    """
    sig_dir = folder / SIGNATURES
    if not sig_dir.is_dir():
        return [], []
    problems: list[Problem] = []
    notes: list[str] = []
    try:
        signer = _load_cert(sig_dir / SIGNER_CERT)
    except DRError as exc:
        return [Problem("signature-invalid", f"{SIGNATURES}/{SIGNER_CERT}", str(exc))], []
    anchor = signer
    if trust is not None:
        anchor = _load_cert(trust)
        if anchor != signer:
            try:
                signer.verify_directly_issued_by(anchor)
            except (ValueError, TypeError, InvalidSignature):
                problems.append(
                    Problem(
                        "signature-untrusted",
                        f"{SIGNATURES}/{SIGNER_CERT}",
                        f"not issued by {anchor.subject.rfc4514_string()}",
                    )
                )
    who = signer.subject.rfc4514_string()
    problems += _verify_head_signature(folder, signer)
    problems += _verify_pdf_signature(folder, signer, anchor)
    if not problems:
        notes.append(f"manifest head and PDF signed by {who}")
        if trust is None:
            notes.append("signer's certificate not checked against a trust anchor (--trust)")
    return problems, notes


def _verify_head_signature(folder: Path, signer: x509.Certificate) -> list[Problem]:
    sig_dir = folder / SIGNATURES
    try:
        text = (sig_dir / HEAD_TEXT).read_bytes()
        signature = (sig_dir / HEAD_SIGNATURE).read_bytes()
    except FileNotFoundError as exc:
        return [Problem("signature-missing", f"{SIGNATURES}/{Path(str(exc.filename)).name}")]
    problems = []
    if not _verify_bytes(signer, signature, text):
        problems.append(Problem("signature-invalid", f"{SIGNATURES}/{HEAD_SIGNATURE}"))
    if text.decode(errors="replace").strip() != recorded_head(folder):
        problems.append(
            Problem(
                "signature-mismatch",
                f"{SIGNATURES}/{HEAD_TEXT}",
                "the signed head is not the manifest's head",
            )
        )
    return problems


def _verify_pdf_signature(
    folder: Path, signer: x509.Certificate, anchor: x509.Certificate
) -> list[Problem]:
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    where = f"{SIGNATURES}/{SIGNED_PDF}"
    path = folder / SIGNATURES / SIGNED_PDF
    if not path.exists():
        return [Problem("signature-missing", where)]
    signed = path.read_bytes()
    try:
        original = (folder / CHAINED_LAST).read_bytes()
    except FileNotFoundError:
        return [Problem("signature-mismatch", where, f"{CHAINED_LAST} is gone")]
    root = asn1_x509.Certificate.load(anchor.public_bytes(serialization.Encoding.DER))
    try:
        with path.open("rb") as handle:
            reader = PdfFileReader(handle)
            embedded = reader.embedded_signatures
            if not embedded:
                return [Problem("signature-missing", where, "the PDF carries no signature")]
            status = validate_pdf_signature(
                embedded[0], ValidationContext(trust_roots=[root], allow_fetching=False)
            )
    except Exception as exc:  # pyHanko's errors: a damaged signature or file
        return [Problem("signature-invalid", where, str(exc).splitlines()[0][:200])]
    problems = []
    if not (status.intact and status.valid):
        problems.append(Problem("signature-invalid", where, "the signed bytes were changed"))
    elif not status.trusted:
        problems.append(Problem("signature-untrusted", where, status.summary()))
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        problems.append(Problem("signature-mismatch", where, "changed after it was signed"))
    if not signed.startswith(original):
        problems.append(
            Problem("signature-mismatch", where, f"what was signed is not this {CHAINED_LAST}")
        )
    return problems
