"""`livcr hub status --wait-ready` waits for a serving hub, over TLS too (its own cert pinned)."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hubproc import HubProcess

from livcr_exchange.roles import Role


def self_signed(folder: Path, name: str) -> None:
    """cert.pem and key.pem for ``name`` (not for 127.0.0.1: the probe pins the certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def test_wait_ready_on_a_tls_hub(tmp_path: Path) -> None:
    hub = HubProcess.create(tmp_path / "hub", {"coord": Role.COORDINATOR})
    self_signed(hub.directory, "hub.example")
    with hub.config_path.open("a") as config:
        config.write('\n[tls]\ncert_file = "cert.pem"\nkey_file = "key.pem"\n')
    hub.start()
    try:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "livcr_cli", "hub", "status"),
                *("--config", str(hub.config_path), "--port", str(hub.port), "--wait-ready", "60"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        hub.stop()
    assert result.returncode == 0, result.stderr
    assert f"cell testcell: serving at https://127.0.0.1:{hub.port};" in result.stdout
