"""The auditor's copy: the PDF as PDF/A-3b (embedded fonts, output intent, run.json inside,
every page numbered and naming its run and evidence, sign-off last), and the signatures
(`report sign`, `report verify`) against every way they can be made to lie."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from drtests.errors import DRError
from drtests.evidence.assemble import write_reports
from drtests.evidence.manifest import recorded_evidence_head, recorded_head
from drtests.evidence.model import ObjectiveResult
from drtests.evidence.reports import rerender, verify_folder
from drtests.evidence.signing import PASSPHRASE_ENV, load_trust, sign_run, verify_signatures
from drtests.redaction import Redactor
from tests.test_evidence import _run, _scenario

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime.now(dt.UTC)


def _identity(
    folder: Path,
    name: str,
    *,
    curve: bool = False,
    issuer: tuple[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
    passphrase: bytes | None = None,
    expired: bool = False,
    usage: str = "sign",
    time_stamping: bool = False,
) -> tuple[Path, Path, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A key and its certificate, self-signed or issued by ``issuer``, as PEM files."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if curve
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signing_key, issuer_name = (key, subject) if issuer is None else (issuer[0], issuer[1].subject)
    builder = x509.CertificateBuilder()
    if time_stamping:  # what RFC 3161 asks of a TSA's certificate
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]), True
        )
    cert = (
        builder.subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=60 if expired else 1))
        .not_valid_after(NOW + dt.timedelta(days=-30 if expired else 30))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                usage == "sign",  # digitalSignature
                usage == "sign",  # nonRepudiation (contentCommitment)
                usage == "encipher",  # keyEncipherment
                False,
                False,
                issuer is None,  # a self-signed one is its own CA
                issuer is None,
                False,
                False,
            ),
            True,
        )
        .sign(signing_key, hashes.SHA256())
    )
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file, key, cert


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    failed = _scenario("metastore_restore_failed", failed_step="Restore database")
    failed.rto = ObjectiveResult(objective_s=4 * 3600, achieved_s=None, met=False)
    write_reports(folder, _run([_scenario("ok"), failed]), Redactor())
    return folder


def _fonts(pdf: pikepdf.Pdf) -> list[pikepdf.Dictionary]:
    found: dict[tuple[int, int], pikepdf.Dictionary] = {}

    def walk(resources: pikepdf.Object) -> None:
        for font in resources.get("/Font", {}).values():
            found[font.objgen] = font
            for descendant in font.get("/DescendantFonts", []):
                found[descendant.objgen] = descendant
        for xobject in resources.get("/XObject", {}).values():
            if xobject.get("/Subtype") == "/Form" and "/Resources" in xobject:
                walk(xobject.Resources)

    for page in pdf.pages:
        walk(page.Resources)
    return list(found.values())


def test_pdf_is_archival_with_the_run_document_inside(run_folder: Path) -> None:
    with pikepdf.open(run_folder / "report.pdf") as pdf:
        assert "/Encrypt" not in pdf.trailer and "/ID" in pdf.trailer
        meta = pdf.open_metadata()
        assert (meta["pdfaid:part"], meta["pdfaid:conformance"]) == ("3", "B")
        assert meta["dc:title"] == str(pdf.docinfo["/Title"])
        intent = pdf.Root.OutputIntents[0]
        assert intent.S == "/GTS_PDFA1" and intent.DestOutputProfile.N == 3
        fonts = _fonts(pdf)
        assert fonts
        for font in fonts:
            if font.Subtype == "/Type0":
                continue  # its glyphs are in the descendant, checked too
            descriptor = font.FontDescriptor
            assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor.keys()), font
        assert "/JavaScript" not in pdf.Root.get("/Names", {})
        (spec,) = pdf.Root.AF
        assert spec.AFRelationship == "/Source" and spec.UF == "run.json"
        inside = pdf.attachments["run.json"].get_file().read_bytes()
    assert inside == (run_folder / "run.json").read_bytes()


def test_every_page_names_its_run_and_evidence_and_the_sign_off_is_last(
    run_folder: Path,
) -> None:
    run = json.loads((run_folder / "run.json").read_text())
    head = recorded_evidence_head(run_folder)
    assert head and head != recorded_head(run_folder)
    document = pdfium.PdfDocument(run_folder / "report.pdf")
    pages = [
        document[i].get_textpage().get_text_range().replace("\r\n", " ")
        for i in range(len(document))
    ]
    assert len(pages) >= 2
    for number, text in enumerate(pages, 1):
        assert f"Page {number} of {len(pages)}" in text
        assert run["run_id"] in text and head in text.replace(" ", "").replace("\n", "")
    assert "Sign-off" in pages[-1] and "Approver" in pages[-1]
    assert not any("Sign-off" in text for text in pages[:-1])
    whole = " ".join(pages)
    assert "not reached" in pages[0] and "4 h" in pages[0]  # drawn, on an axis reaching 4 h
    assert "metastore_restore_failed" in whole.replace(" ", "")


def test_signed_evidence_verifies_with_drtests_and_with_openssl(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, cert, _, _ = _identity(tmp_path, "auditor", curve=True)
    signed = sign_run(run_folder, key, cert)
    assert signed.head == recorded_head(run_folder)
    assert verify_folder([run_folder], trust=cert) == 0
    out = capsys.readouterr().out
    assert "intact" in out and f"manifest head {signed.head}" in out and "CN=auditor" in out
    openssl = shutil.which("openssl")
    if openssl:  # the auditor's own tools: no drtests needed to check the head's signature
        sig = run_folder / "signature"
        public = tmp_path / "public.pem"
        subprocess.run(
            [openssl, "x509", "-in", sig / "signer.pem", "-pubkey", "-noout", "-out", public],
            check=True,
        )
        checked = subprocess.run(
            [
                openssl,
                "dgst",
                "-sha256",
                "-verify",
                public,
                "-signature",
                sig / "manifest-head.sig",
                sig / "manifest-head.txt",
            ],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0 and "Verified OK" in checked.stdout
    with pikepdf.open(run_folder / "signature" / "report.signed.pdf") as pdf:
        assert pdf.open_metadata()["pdfaid:part"] == "3"  # still the archival document


def test_a_certificate_from_a_ca_is_trusted_through_the_ca(
    run_folder: Path, tmp_path: Path
) -> None:
    _ca_key_file, ca_cert, ca_key, ca = _identity(tmp_path, "evidence-ca")
    key, cert, _, _ = _identity(tmp_path, "operator", issuer=(ca_key, ca))
    sign_run(run_folder, key, cert)
    assert verify_folder([run_folder], trust=ca_cert) == 0
    bundle = tmp_path / "bundle.pem"  # a CA bundle: the issuing CA need not be first
    _, other_ca, _, _ = _identity(tmp_path, "other-ca")
    bundle.write_bytes(other_ca.read_bytes() + ca_cert.read_bytes())
    assert verify_folder([run_folder], trust=bundle) == 0
    _, stranger, _, _ = _identity(tmp_path, "stranger")
    problems, _ = verify_signatures(run_folder, load_trust(stranger))
    assert {p.kind for p in problems} == {"signature-untrusted"}


@pytest.mark.parametrize(
    "tamper",
    [
        "head-text",
        "head-signature",
        "signed-pdf-appended",
        "signed-pdf-incremental",
        "signed-pdf-bytes",
        "report-pdf",
        "other-signer",
        "swapped-signer-pem",
        "extra-file",
    ],
)
def test_every_lie_in_the_signatures_is_named(
    tamper: str, run_folder: Path, tmp_path: Path
) -> None:
    key, cert, _, _ = _identity(tmp_path, "auditor")
    sign_run(run_folder, key, cert)
    sig = run_folder / "signature"
    if tamper == "head-text":
        (sig / "manifest-head.txt").write_text("0" * 64 + "\n")
    elif tamper == "head-signature":
        data = bytearray((sig / "manifest-head.sig").read_bytes())
        data[10] ^= 0xFF
        (sig / "manifest-head.sig").write_bytes(bytes(data))
    elif tamper == "signed-pdf-appended":
        with pikepdf.open(sig / "report.signed.pdf", allow_overwriting_input=True) as pdf:
            pdf.docinfo["/Title"] = "Everything passed"
            pdf.save(sig / "report.signed.pdf")
    elif tamper == "signed-pdf-incremental":  # a revision added after the signature
        from pyhanko.pdf_utils.generic import NameObject, TextStringObject
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

        with (sig / "report.signed.pdf").open("rb+") as handle:
            writer = IncrementalPdfFileWriter(handle)
            writer.document_meta.title = "Everything passed"
            writer.root[NameObject("/Lang")] = TextStringObject("en")
            writer.update_root()
            writer.write_in_place()
    elif tamper == "signed-pdf-bytes":
        data = (sig / "report.signed.pdf").read_bytes()
        at = data.index(b"Disaster-recovery") if b"Disaster-recovery" in data else 200
        (sig / "report.signed.pdf").write_bytes(data[:at] + b"X" + data[at + 1 :])
    elif tamper == "report-pdf":
        with (run_folder / "report.pdf").open("ab") as handle:
            handle.write(b"\n% appended\n")
    elif tamper == "other-signer":
        other_key, other_cert, _, _ = _identity(tmp_path, "intruder")
        shutil.move(sig, tmp_path / "genuine")
        sign_run(run_folder, other_key, other_cert)
    elif tamper == "swapped-signer-pem":
        _, intruder, _, _ = _identity(tmp_path, "intruder")
        shutil.copy(intruder, sig / "signer.pem")
    elif tamper == "extra-file":
        (sig / "note.txt").write_text("approved")
    problems, notes = verify_signatures(run_folder, load_trust(cert))
    assert problems and not notes, tamper
    assert verify_folder([run_folder], trust=cert) == 1


def test_signing_refuses_bad_keys_and_tampered_evidence(
    run_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert, _, _ = _identity(tmp_path, "locked", passphrase=b"s3cret-Passphrase")
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    with pytest.raises(DRError, match=f"encrypted: put its passphrase in \\${PASSPHRASE_ENV}"):
        sign_run(run_folder, key, cert)
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(DRError, match="wrong passphrase"):
        sign_run(run_folder, key, cert)
    _, other_cert, _, _ = _identity(tmp_path, "other")
    monkeypatch.setenv(PASSPHRASE_ENV, "s3cret-Passphrase")
    with pytest.raises(DRError, match="is not the certificate of key"):
        sign_run(run_folder, key, other_cert)
    with pytest.raises(DRError, match="no such file"):
        sign_run(run_folder, tmp_path / "missing.key", cert)
    with pytest.raises(DRError, match="a directory, not a key file"):
        sign_run(run_folder, tmp_path, cert)
    plain_key, plain_cert, _, _ = _identity(tmp_path, "plain")
    with pytest.raises(DRError, match=f"is not encrypted: unset \\${PASSPHRASE_ENV}"):
        sign_run(run_folder, plain_key, plain_cert)
    monkeypatch.delenv(PASSPHRASE_ENV)
    _, _, ca_key, ca = _identity(tmp_path, "ca")
    for name, kwargs in (
        ("expired", {"expired": True}),
        ("encipher-only", {"usage": "encipher"}),
    ):
        bad_key, bad_cert, _, _ = _identity(tmp_path, name, issuer=(ca_key, ca), **kwargs)
        with pytest.raises(DRError, match=r"cannot sign evidence: (expired|its key usage)"):
            sign_run(run_folder, bad_key, bad_cert)
    with pytest.raises(DRError, match="not a run folder"):
        sign_run(tmp_path / "nope", plain_key, plain_cert)
    monkeypatch.setenv(PASSPHRASE_ENV, "s3cret-Passphrase")
    (run_folder / "summary.md").write_text("all green")
    with pytest.raises(DRError, match="not signing evidence that fails verification: modified"):
        sign_run(run_folder, key, cert)
    assert not (run_folder / "signature").exists()


def test_a_signed_folder_is_not_re_rendered_under_its_signatures(
    run_folder: Path, tmp_path: Path
) -> None:
    key, cert, _, _ = _identity(tmp_path, "auditor")
    sign_run(run_folder, key, cert)
    with pytest.raises(DRError, match="is signed; re-rendering would invalidate signature/"):
        rerender(run_folder)
    with pytest.raises(DRError, match="already signed"):
        sign_run(run_folder, key, cert)
    assert sorted(p.name for p in run_folder.parent.iterdir()) == [
        "auditor.key",
        "auditor.pem",
        "run",
    ]


def test_sign_and_verify_from_the_command_line(run_folder: Path, tmp_path: Path) -> None:
    key, cert, _, _ = _identity(tmp_path, "auditor")

    def drtests(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "drtests.cli", "report", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    signed = drtests("sign", str(run_folder), "--key", str(key), "--cert", str(cert))
    assert signed.returncode == 0, signed.stderr
    head = recorded_head(run_folder)
    assert f"manifest head {head}" in signed.stdout
    verified = drtests("verify", str(run_folder), "--trust", str(cert), "--head", str(head))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"manifest head {head}" in verified.stdout
    (run_folder / "signature" / "manifest-head.txt").write_text("f" * 64 + "\n")
    broken = drtests("verify", str(run_folder))
    assert broken.returncode == 1 and "signature/manifest-head" in broken.stdout
    piped = subprocess.run(  # a reader that stops early (| head) is not a failure
        [
            "bash",
            "-c",
            f"set -o pipefail; {sys.executable} -m drtests.cli report verify "
            f"{run_folder} --trust {cert} | true",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in piped.stderr and "Exception ignored" not in piped.stderr
    usage = drtests("sign", str(run_folder))
    assert usage.returncode != 0 and "--key KEY.pem --cert CERT.pem" in usage.stderr
    assert "Traceback" not in usage.stderr + broken.stderr


def test_re_rendering_without_a_manifest_is_refused(run_folder: Path) -> None:
    """Deleting the manifest must not be a way to have an edited run.json adopted."""
    (run_folder / "manifest.sha256.json").unlink()
    document = json.loads((run_folder / "run.json").read_text())
    document["operator"] = "Forged Operator"
    (run_folder / "run.json").write_text(json.dumps(document))
    with pytest.raises(DRError, match=r"no manifest\.sha256\.json"):
        rerender(run_folder)


def test_verify_names_bad_arguments_in_one_line(run_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(DRError, match="not a run folder"):
        verify_folder([run_folder / "run.json"])
    with pytest.raises(DRError, match="not a SHA-256"):
        verify_folder([run_folder], expected_head="xyz")
    with pytest.raises(DRError, match="a directory, not a PEM file"):
        verify_folder([run_folder], trust=tmp_path)
    head = recorded_head(run_folder)
    assert head is not None
    assert verify_folder([run_folder], expected_head=head.upper()) == 0


@pytest.mark.parametrize(
    ("arguments", "refusal"),
    [
        (
            ["verify", "--key", "k.pem"],
            "report verify does not take --key (it is for: report sign)",
        ),
        (["sign", "--trust", "ca.pem"], "report sign does not take --trust"),
        (["--head", "0" * 64], "report DIR… does not take --head"),
        (["verify", "--history"], "report verify does not take --history"),
    ],
)
def test_an_option_of_another_action_is_refused_not_ignored(
    run_folder: Path, arguments: list[str], refusal: str
) -> None:
    """``report verify --key K`` must not pass as a check made with that key."""
    action, options = (
        (arguments[:1], arguments[1:]) if arguments[0] in ("verify", "sign") else ([], arguments)
    )
    before = {p.name: p.read_bytes() for p in run_folder.iterdir() if p.is_file()}
    done = subprocess.run(
        [sys.executable, "-m", "drtests.cli", "report", *action, str(run_folder), *options],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done
    assert refusal in done.stderr
    assert "Traceback" not in done.stderr
    assert {p.name: p.read_bytes() for p in run_folder.iterdir() if p.is_file()} == before


# ------------------------------------------------------------------ time stamps (PAdES B-T)


@dataclasses.dataclass
class Authority:
    """A time-stamping authority under test: its URL, its CA, and how it behaves."""

    url: str
    ca_file: Path
    #: "honest", or a lie: "garbage", "empty", "http-500", "html", "refuses", "replays",
    #: "forged", "no-eku"
    mode: str = "honest"
    replies: list[bytes] = dataclasses.field(default_factory=list)


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[Authority]:
    """An RFC 3161 time-stamping authority over HTTP (pyHanko's test TSA behind a real
    HTTP server), issued by a CA of its own, that can be told to lie."""
    import http.server

    from asn1crypto import keys, tsp
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign.timestamps import DummyTimeStamper

    from fixtures.http_server import serving

    _, ca_file, ca_key, ca = _identity(tmp_path, "tsa-ca")

    def stamper(name: str, time_stamping: bool) -> DummyTimeStamper:
        _, _, key, cert = _identity(
            tmp_path, name, issuer=(ca_key, ca), time_stamping=time_stamping
        )
        der = serialization.Encoding.DER
        return DummyTimeStamper(
            tsa_cert=asn1_x509.Certificate.load(cert.public_bytes(der)),
            tsa_key=keys.PrivateKeyInfo.load(
                key.private_bytes(
                    der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            ),
        )

    honest, without_eku = stamper("tsa", True), stamper("tsa-no-eku", False)
    authority = Authority("", ca_file)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = tsp.TimeStampReq.load(self.rfile.read(int(self.headers["Content-Length"])))
            mode, kind, code = authority.mode, "application/timestamp-reply", 200
            if mode == "refuses":
                status = tsp.PKIStatusInfo(
                    {
                        "status": "rejection",
                        "status_string": ["policy not supported"],
                        "fail_info": {"unaccepted_policy"},
                    }
                ).dump()
                body = b"\x30" + bytes([len(status)]) + status  # a TimeStampResp of its status
            elif mode == "garbage":
                body = b"\x30\x82\x01\x00 not DER at all"
            elif mode == "html":
                kind, body = "text/html", b"<html>sign in</html>"
            elif mode == "http-500":
                code, body = 500, b"internal error"
            elif mode == "replays" and authority.replies:
                body = authority.replies[0]
            elif mode == "empty":
                body = b""
            else:
                answer = (without_eku if mode == "no-eku" else honest).request_tsa_response(request)
                body = answer.dump()
                if mode == "forged":  # the last byte is the token's signature's
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
            authority.replies.append(body)
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        authority.url = f"{url}/"
        yield authority


def test_a_time_stamped_signature_is_pades_b_t_and_its_authority_is_checked(
    run_folder: Path, tmp_path: Path, tsa: Authority, capsys: pytest.CaptureFixture[str]
) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    _, ca_file, ca_key, ca = _identity(tmp_path, "evidence-ca")
    key, cert, _, _ = _identity(tmp_path, "operator", issuer=(ca_key, ca))
    command = [sys.executable, "-m", "drtests.cli", "report", "sign", str(run_folder)]
    signing = subprocess.run(
        [*command, "--key", str(key), "--cert", str(cert), "--tsa", tsa.url],
        capture_output=True,
        text=True,
    )
    assert signing.returncode == 0, signing.stderr
    assert signing.stderr == ""  # pyHanko's path-building logs kept off the terminal
    assert f"time-stamped by {tsa.url} (PAdES B-T)" in signing.stdout
    with (run_folder / "signature" / "report.signed.pdf").open("rb") as handle:
        attributes = PdfFileReader(handle).embedded_signatures[0].signer_info["unsigned_attrs"]
        assert "signature_time_stamp_token" in [a["type"].native for a in attributes]
    both = tmp_path / "both.pem"
    both.write_bytes(ca_file.read_bytes() + tsa.ca_file.read_bytes())
    assert verify_folder([run_folder], trust=both) == 0
    out = capsys.readouterr().out
    assert "time-stamped 20" in out and "by CN=tsa (PAdES B-T)" in out
    problems, _ = verify_signatures(run_folder, load_trust(ca_file))  # the TSA's CA left out
    assert [(p.kind, p.detail) for p in problems] == [
        ("signature-untrusted", "time stamp by CN=tsa: not a trusted TSA")
    ]


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("garbage", "its reply is not a readable time-stamp reply"),
        ("empty", "answered an empty body"),
        ("forged", "its token's signature does not verify (forged or damaged)"),
        ("http-500", "answered HTTP 500"),
        ("html", "answered text/html, not a time-stamp reply"),
        ("refuses", "refused the request (rejection: policy not supported; unaccepted_policy)"),
        ("replays", "its reply answers another request (nonce mismatch"),
        ("no-eku", "its certificate (CN=tsa-no-eku) lacks the timeStamping extended key usage"),
    ],
)
def test_a_lying_time_stamping_authority_signs_nothing(
    mode: str, said: str, run_folder: Path, tmp_path: Path, tsa: Authority
) -> None:
    key, cert, _, _ = _identity(tmp_path, "auditor")
    tsa.mode = mode
    with pytest.raises(DRError) as refused:
        sign_run(run_folder, key, cert, tsa_url=tsa.url)
    assert str(refused.value).startswith(f"time-stamping authority {tsa.url}: {said}")
    assert str(refused.value).endswith("; nothing was signed")
    assert not (run_folder / "signature").exists()
    assert not [p for p in run_folder.parent.iterdir() if p.name.startswith(".signature-")]


@pytest.mark.parametrize("url", ["", "127.0.0.1:9/", "ftp://127.0.0.1/"])
def test_a_time_stamping_url_that_is_not_http_is_refused(
    url: str, run_folder: Path, tmp_path: Path
) -> None:
    key, cert, _, _ = _identity(tmp_path, "auditor")
    with pytest.raises(DRError, match="not an http:// or https:// URL"):
        sign_run(run_folder, key, cert, tsa_url=url)
    assert not (run_folder / "signature").exists()


def test_a_certificate_for_another_purpose_does_not_sign_and_trust_needs_a_signature(
    run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TSA's certificate is not a document signer (``openssl cms -verify`` rejects it);
    ``--trust`` on a folder that is not signed is a failed check, not a silent pass."""
    key, cert, _, _ = _identity(tmp_path, "tsa-only", time_stamping=True)
    with pytest.raises(DRError, match=r"extended key usage \(timeStamping\) does not include"):
        sign_run(run_folder, key, cert)
    assert verify_folder([run_folder], trust=cert) == 1
    out = capsys.readouterr().out
    assert "signature-missing: signature/ (--trust given: not signed)" in out
    assert "intact (manifest.sha256.json verified)" in out


def test_an_unreachable_time_stamping_authority_signs_nothing(
    run_folder: Path, tmp_path: Path
) -> None:
    from drtests.processes import free_port

    key, cert, _, _ = _identity(tmp_path, "auditor")
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(DRError, match=r"time-stamping authority .*Connection refused.*nothing"):
        sign_run(run_folder, key, cert, tsa_url=url)
    assert not (run_folder / "signature").exists()
    assert not [p for p in run_folder.parent.iterdir() if p.name.startswith(".signature-")]
