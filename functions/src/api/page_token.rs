//! Continuation tokens the client cannot forge or move: the store's keyset token wrapped with
//! an HMAC over the tenant, the listing and the token itself.
//!
//! The store's token already names its query and filters; the seal adds the tenant and the
//! listing (the operation), and makes a changed, truncated or invented token a clear 400
//! instead of a reinterpretation. The key is derived from `GDPR_PSEUDONYM_KEY` (local mode: its
//! key file in `DATA_DIR`), so every instance of the app accepts every instance's tokens.
//!
//! Form: base64url(16-byte tag ‖ store token), tag = HMAC-SHA256(key, tenant ␟ listing ␟ token)
//! truncated to 128 bits.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use shared::domain::masking::PseudonymKey;
use shared::domain::tenant::TenantId;
use shared::store::{Page, PageRequest, StoreError};

use super::paging::DEFAULT_PAGE_SIZE;
use super::{ApiError, PageResponse};

const TAG_BYTES: usize = 16;

/// Seals and opens the continuation tokens of the API's listings.
#[derive(Clone)]
pub struct PageTokens {
    /// HMAC-SHA256 keyed with the derived key, cloned for every tag.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens(key redacted)")
    }
}

impl PageTokens {
    /// Tokens sealed with a key derived from the pseudonym key.
    pub fn new(key: &PseudonymKey) -> Self {
        let derived = key.derive("continuation-tokens/v1");
        // HMAC takes keys of any length, so the fallback (an all-zero key) never runs.
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(&derived)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
        Self { keyed }
    }

    /// The listing `name` as `tenant` pages through it: opens the tokens it is given and
    /// seals the ones it hands out, with one tenant and one name for both.
    pub fn listing<'a>(&'a self, tenant: &'a TenantId, name: &'static str) -> Listing<'a> {
        Listing {
            tokens: self,
            tenant,
            name,
        }
    }

    fn seal(&self, tenant: &TenantId, listing: &str, token: &str) -> String {
        let mut bytes = self.tag(tenant, listing, token).to_vec();
        bytes.extend_from_slice(token.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn unseal(&self, tenant: &TenantId, listing: &str, sealed: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed.trim()).ok()?;
        if bytes.len() <= TAG_BYTES {
            return None;
        }
        let (tag, token) = bytes.split_at(TAG_BYTES);
        let token = std::str::from_utf8(token).ok()?;
        self.mac(tenant, listing, token)
            .verify_truncated_left(tag)
            .ok()?;
        Some(token.to_owned())
    }

    fn tag(&self, tenant: &TenantId, listing: &str, token: &str) -> [u8; TAG_BYTES] {
        let digest = self.mac(tenant, listing, token).finalize().into_bytes();
        let mut tag = [0; TAG_BYTES];
        tag.copy_from_slice(&digest[..TAG_BYTES]);
        tag
    }

    fn mac(&self, tenant: &TenantId, listing: &str, token: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(tenant.as_str().as_bytes());
        mac.update(&[0x1f]);
        mac.update(listing.as_bytes());
        mac.update(&[0x1f]);
        mac.update(token.as_bytes());
        mac
    }
}

/// One listing of one tenant (see [`PageTokens::listing`]).
pub struct Listing<'a> {
    tokens: &'a PageTokens,
    tenant: &'a TenantId,
    name: &'static str,
}

impl Listing<'_> {
    /// The store's page request for the caller's `page` (the first page of the default size
    /// when there is none), its continuation token opened: 400 unless this app sealed it for
    /// this tenant and listing.
    pub fn request(&self, page: Option<PageRequest>) -> Result<PageRequest, ApiError> {
        let page = page.unwrap_or_else(|| PageRequest::first(DEFAULT_PAGE_SIZE));
        let Some(sealed) = page.continuation.as_deref() else {
            return Ok(page);
        };
        let inner = self
            .tokens
            .unseal(self.tenant, self.name, sealed)
            .ok_or_else(|| {
                ApiError::Store(StoreError::InvalidContinuation(
                    "the token was not issued by this listing for this tenant (changed, from \
                     another listing or tenant, or made up); start again without it"
                        .into(),
                ))
            })?;
        Ok(PageRequest::new(page.limit, Some(inner)))
    }

    /// The API page for `page`, its continuation token sealed.
    pub fn response<T>(&self, page: Page<T>) -> PageResponse<T> {
        PageResponse {
            items: page.items,
            continuation: page
                .continuation
                .map(|token| self.tokens.seal(self.tenant, self.name, &token)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(secret: &str) -> PageTokens {
        PageTokens::new(&PseudonymKey::new(secret).unwrap())
    }

    fn tenant(id: &str) -> TenantId {
        TenantId::new(id).unwrap()
    }

    #[test]
    fn a_sealed_token_opens_only_for_its_tenant_and_listing_and_key() {
        let keys = tokens("a-key-of-the-app-0123456789abcdef");
        let sealed = keys.seal(&tenant("t1"), "listOrders", "eyJxIjoib3JkZXJzIn0");
        assert_eq!(
            keys.unseal(&tenant("t1"), "listOrders", &sealed).as_deref(),
            Some("eyJxIjoib3JkZXJzIn0")
        );
        assert_eq!(keys.unseal(&tenant("t2"), "listOrders", &sealed), None);
        assert_eq!(keys.unseal(&tenant("t1"), "listCustomers", &sealed), None);
        let other = tokens("another-key-0123456789abcdef-xyz");
        assert_eq!(other.unseal(&tenant("t1"), "listOrders", &sealed), None);
    }

    #[test]
    fn a_changed_truncated_or_invented_token_does_not_open() {
        let keys = tokens("a-key-of-the-app-0123456789abcdef");
        let sealed = keys.seal(&tenant("t1"), "listOrders", "eyJxIjoib3JkZXJzIn0");
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let changed = URL_SAFE_NO_PAD.encode(&bytes);
        for bad in [
            changed.as_str(),
            &sealed[..sealed.len() - 4],
            "",
            "AAAA",
            "not base64!",
        ] {
            assert_eq!(keys.unseal(&tenant("t1"), "listOrders", bad), None, "{bad}");
        }
    }
}
