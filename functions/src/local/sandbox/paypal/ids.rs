//! Identifiers in PayPal's styles: 17-character resource ids, `A21AA...` access tokens,
//! `WH-...` event ids, 13-character debug ids.

use rsa::rand_core::{OsRng, RngCore};

const UPPER_ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const HEX: &[u8] = b"0123456789abcdef";
const TOKEN: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `len` characters drawn from `alphabet` (at most 256 symbols) with the OS RNG.
fn random(alphabet: &[u8], len: usize) -> String {
    let mut bytes = vec![0u8; len];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|byte| char::from(alphabet[usize::from(*byte) % alphabet.len()]))
        .collect()
}

/// An order, authorization, capture or refund id: 17 upper-case letters and digits.
pub fn resource_id() -> String {
    random(UPPER_ALNUM, 17)
}

/// A `debug_id` of an error body: 13 lower-case hex digits.
pub fn debug_id() -> String {
    random(HEX, 13)
}

/// A bearer token as PayPal issues them (`A21AA` then opaque characters).
pub fn access_token() -> String {
    format!("A21AA{}", random(TOKEN, 92))
}

/// A webhook event id (`WH-` and two 17-character groups).
pub fn event_id() -> String {
    format!("WH-{}-{}", resource_id(), resource_id())
}

/// A webhook id as PayPal shows them for a registered webhook.
pub fn webhook_id() -> String {
    resource_id()
}

/// A payer id: 13 upper-case letters and digits.
pub fn payer_id() -> String {
    random(UPPER_ALNUM, 13)
}

/// An app id (`APP-` and 17 characters).
pub fn app_id() -> String {
    format!("APP-{}", resource_id())
}

/// A REST app client id, as long as PayPal's.
pub fn client_id() -> String {
    random(TOKEN, 80)
}

/// A REST app secret, as long as PayPal's.
pub fn client_secret() -> String {
    random(TOKEN, 80)
}

/// A nonce for the token answer.
pub fn nonce() -> String {
    random(TOKEN, 43)
}

/// A certificate id for the cert URL (`CERT-` and three hex groups, as PayPal's look).
pub fn cert_id() -> String {
    format!(
        "CERT-{}-{}-{}",
        random(HEX, 8),
        random(HEX, 8),
        random(HEX, 8)
    )
}
