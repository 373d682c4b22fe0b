//! The webhook signing key and its certificate, made at start (nothing is kept in the repo),
//! and PayPal's signature: base64 of RSA PKCS#1 v1.5 SHA-256 over
//! `{transmission_id}|{transmission_time}|{webhook_id}|{crc32 of the raw body}`.

use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::rand_core::OsRng;
use rsa::signature::{SignatureEncoding, Signer as _};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::pem::LineEnding;
use x509_cert::der::EncodePem;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

use super::ids;

/// Why the signing material could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot generate the RSA key: {0}")]
    Key(#[from] rsa::Error),
    #[error("cannot build the certificate: {0}")]
    Certificate(#[from] x509_cert::builder::Error),
    #[error("cannot encode the certificate: {0}")]
    Encoding(#[from] x509_cert::der::Error),
    #[error("cannot encode the public key: {0}")]
    PublicKey(#[from] x509_cert::spki::Error),
}

/// The key webhooks are signed with and the certificate served at the cert URL.
pub struct Signer {
    key: SigningKey<Sha256>,
    cert_pem: String,
    cert_id: String,
}

impl Signer {
    /// A fresh RSA-2048 key and a self-signed certificate for it, valid for a year.
    pub fn generate() -> Result<Self, SigningError> {
        let private = RsaPrivateKey::new(&mut OsRng, 2048)?;
        let public = RsaPublicKey::from(&private);
        let key = SigningKey::<Sha256>::new(private);
        let subject =
            Name::from_str("CN=messageverificationcerts.sandbox.local,O=Local PayPal sandbox")?;
        let validity = Validity::from_now(Duration::from_secs(365 * 24 * 3600))?;
        let serial = SerialNumber::from(u32::from_be_bytes(*b"PPSB"));
        let spki = SubjectPublicKeyInfoOwned::from_key(public)?;
        let builder =
            CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, &key)?;
        let certificate = builder.build::<Signature>()?;
        let cert_pem = certificate.to_pem(LineEnding::LF)?;
        Ok(Self {
            key,
            cert_pem,
            cert_id: ids::cert_id(),
        })
    }

    /// The certificate, PEM-encoded.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The id in the cert URL (`CERT-...`).
    pub fn cert_id(&self) -> &str {
        &self.cert_id
    }

    /// `PAYPAL-TRANSMISSION-SIG` for one transmission of `body`.
    pub fn transmission_sig(
        &self,
        transmission_id: &str,
        transmission_time: &str,
        webhook_id: &str,
        body: &[u8],
    ) -> String {
        let crc = crc32fast::hash(body);
        let message = format!("{transmission_id}|{transmission_time}|{webhook_id}|{crc}");
        let signature = self.key.sign(message.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
    }
}
