//! The shipping carrier's settings (`CARRIER_*`, `SHIPPING_*`, `SHIPMENT_TRACKING_SCHEDULE`,
//! `LOCAL_CARRIER_*`): where the carrier is, its API key, the sender's address, caching, the
//! tracking timer's schedule and the local sandbox.

use std::time::Duration;

use super::{check_remote, ConfigError, Reader};
use crate::outbound::Secret;
use crate::shipping::easypost::EasyPostConfig;
use crate::shipping::ShipAddress;

/// The shipping carrier (EasyPost). Without `CARRIER_BASE_URL` no carrier is configured in
/// Azure; `handler local` starts its sandbox carrier and points the app at it.
#[derive(Clone, PartialEq)]
pub struct ShippingSettings {
    /// `https://api.easypost.com` (`CARRIER_BASE_URL`).
    pub base_url: Option<String>,
    /// The API key (`CARRIER_API_KEY`; a Key Vault reference in Azure). Never logged.
    pub api_key: Option<String>,
    /// How long one call to the carrier may take (`CARRIER_TIMEOUT_SECONDS`).
    pub timeout: Duration,
    /// How long the carrier's breaker stays open (`CARRIER_BREAKER_OPEN_SECONDS`).
    pub breaker_open_for: Duration,
    /// Where parcels leave from (`SHIPPING_FROM_ADDRESS`, JSON like an order's address plus
    /// `name`).
    pub from_address: ShipAddress,
    /// The weight of one unit of any item, in ounces (`SHIPPING_ITEM_WEIGHT_OZ`).
    pub item_weight_oz: u32,
    /// How long rate quotes are reused (`SHIPPING_RATES_CACHE_SECONDS`).
    pub rates_cache: Duration,
    /// How long a tracker is reused when the carrier gives no `max-age`
    /// (`SHIPPING_TRACKING_CACHE_SECONDS`).
    pub tracking_cache: Duration,
    /// The `ShipmentTracking` timer's NCRONTAB schedule (`SHIPMENT_TRACKING_SCHEDULE`).
    pub tracking_schedule: String,
    /// The local sandbox carrier's port (`LOCAL_CARRIER_PORT`; 0 picks a free one).
    pub local_port: u16,
    /// Seconds between the sandbox's tracking steps (`LOCAL_CARRIER_STEP_SECONDS`).
    pub local_step: Duration,
}

impl std::fmt::Debug for ShippingSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShippingSettings")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("tracking_schedule", &self.tracking_schedule)
            .finish_non_exhaustive()
    }
}

/// The default sender: the local demo warehouse.
fn default_from() -> ShipAddress {
    ShipAddress {
        name: Some("Order fulfilment".into()),
        line1: "1 Warehouse Way".into(),
        line2: None,
        city: "Berlin".into(),
        postal_code: "10115".into(),
        country: "DE".into(),
    }
}

/// The default schedule of `ShipmentTracking`: every 10 minutes.
pub const DEFAULT_TRACKING_SCHEDULE: &str = "0 */10 * * * *";

impl ShippingSettings {
    /// The adapter's configuration, when a carrier is configured (with its API key).
    pub fn client_config(&self) -> Option<EasyPostConfig> {
        let (Some(base_url), Some(api_key)) = (&self.base_url, &self.api_key) else {
            return None;
        };
        Some(EasyPostConfig {
            base_url: base_url.clone(),
            api_key: Secret::new(api_key.clone()),
            timeout: self.timeout,
            breaker_open_for: self.breaker_open_for,
        })
    }

    /// A carrier URL needs its API key, and TLS.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let Some(base_url) = &self.base_url else {
            return Ok(());
        };
        check_remote(
            ("CARRIER_BASE_URL", base_url),
            &[("CARRIER_API_KEY", &self.api_key)],
            "The carrier",
            "https://api.easypost.com",
        )
    }
}

impl Reader<'_> {
    pub(super) fn shipping(&self) -> Result<ShippingSettings, ConfigError> {
        Ok(ShippingSettings {
            base_url: self.url("CARRIER_BASE_URL")?,
            api_key: self.optional("CARRIER_API_KEY"),
            timeout: Duration::from_secs(self.number("CARRIER_TIMEOUT_SECONDS", 10, 1..=120)?),
            breaker_open_for: Duration::from_secs(self.number(
                "CARRIER_BREAKER_OPEN_SECONDS",
                30,
                1..=600,
            )?),
            from_address: self.sender_address()?,
            item_weight_oz: self.number("SHIPPING_ITEM_WEIGHT_OZ", 16, 1..=10_000)?,
            rates_cache: Duration::from_secs(self.number(
                "SHIPPING_RATES_CACHE_SECONDS",
                300,
                0..=3_600,
            )?),
            tracking_cache: Duration::from_secs(self.number(
                "SHIPPING_TRACKING_CACHE_SECONDS",
                60,
                0..=3_600,
            )?),
            tracking_schedule: self.text("SHIPMENT_TRACKING_SCHEDULE", DEFAULT_TRACKING_SCHEDULE),
            local_port: self.number("LOCAL_CARRIER_PORT", 0, 0..=65_535)?,
            local_step: Duration::from_secs(self.number(
                "LOCAL_CARRIER_STEP_SECONDS",
                5,
                1..=86_400,
            )?),
        })
    }

    fn sender_address(&self) -> Result<ShipAddress, ConfigError> {
        const NAME: &str = "SHIPPING_FROM_ADDRESS";
        let Some(value) = self.optional("SHIPPING_FROM_ADDRESS") else {
            return Ok(default_from());
        };
        serde_json::from_str(&value).map_err(|error| ConfigError::Invalid {
            name: NAME,
            value,
            problem: format!("not an address ({error})"),
            fix: r#"use {"name": "Warehouse", "line1": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE"}"#.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Settings, SettingsSource};

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, super::ConfigError> {
        let pairs = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()));
        Settings::load(&SettingsSource::from_pairs(pairs))
    }

    #[test]
    fn the_carrier_needs_its_key_and_https_and_never_shows_the_key() {
        let settings = load(&[]).expect("defaults");
        assert!(settings.shipping.client_config().is_none());
        assert_eq!(settings.shipping.from_address.country, "DE");
        let url = ("CARRIER_BASE_URL", "https://api.easypost.com");
        let error = load(&[url]).expect_err("no key");
        assert!(error.to_string().contains("CARRIER_API_KEY"), "{error}");
        let plain = ("CARRIER_BASE_URL", "http://api.easypost.com");
        let error = load(&[plain, ("CARRIER_API_KEY", "EZAKsecret")]).expect_err("http");
        assert!(error.to_string().contains("https"), "{error}");
        let settings = load(&[url, ("CARRIER_API_KEY", "EZAKsecret")]).expect("valid");
        assert!(settings.shipping.client_config().is_some());
        assert!(!format!("{:?}", settings.shipping).contains("EZAKsecret"));
        let error = load(&[("SHIPPING_FROM_ADDRESS", "{}")]).expect_err("not an address");
        assert!(
            error.to_string().contains("SHIPPING_FROM_ADDRESS"),
            "{error}"
        );
    }
}
