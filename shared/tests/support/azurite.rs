//! Azurite for tests: its endpoint from `AZURITE_BLOB_ENDPOINT` (exported by `scripts/test`,
//! see `scripts/lib/azurite.sh`) and an account SAS computed from its well-known development
//! account key (a public constant from Azurite's README, not a secret). Shared by the archive
//! conformance suite and the handler's end-to-end Blob test (`#[path]`-included).

#![allow(dead_code)]

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Azurite's development account (documented in Azurite's README; the same for every install).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The REST version the SAS is signed for (the one `azure_storage_blob` 1.1 sends).
const SAS_VERSION: &str = "2026-04-06";

/// The Azurite endpoint, or `None` with the reason printed when the Blob tests may be skipped.
pub fn azurite_endpoint() -> Option<String> {
    match std::env::var("AZURITE_BLOB_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("AZURITE_BLOB_ENDPOINT is not set under CI: run the tests through scripts/test, which starts Azurite")
        }
        _ => {
            eprintln!(
                "skipped: AZURITE_BLOB_ENDPOINT is not set (run scripts/test to start Azurite)"
            );
            None
        }
    }
}

/// An account SAS (service blob, all resource types) valid for an hour, as a query string.
pub fn account_sas() -> String {
    let expiry = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (permissions, services, resource_types, protocols) = ("rwdlac", "b", "sco", "https,http");
    // Version 2020-12-06 and later: account, sp, ss, srt, st, se, sip, spr, sv, ses, then "\n".
    let string_to_sign =
        format!("{AZURITE_ACCOUNT}\n{permissions}\n{services}\n{resource_types}\n\n{expiry}\n\n{protocols}\n{SAS_VERSION}\n\n");
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!(
        "sv={SAS_VERSION}&ss={services}&srt={resource_types}&sp={permissions}&se={}&spr={}&sig={}",
        encode(&expiry),
        encode(protocols),
        encode(&signature)
    )
}

/// Percent-encodes everything but unreserved characters (the SDK re-parses the query string,
/// so a raw `+` in the signature would become a space).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
