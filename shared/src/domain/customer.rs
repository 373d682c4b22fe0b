//! Customers: the people and companies a tenant sells to. Profile fields are personal data
//! (name, email, phone, address); everything else refers to a customer by id only.

use crate::domain::field_rules::{rules, COUNTRY};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::validation::{Invalid, Validation};

/// Where a customer stands with respect to erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CustomerStatus {
    Active,
    /// An erasure was requested; the profile is read-only until it completes.
    ErasureRequested,
    /// Personal data was destroyed; the record stays for bookkeeping.
    Erased,
}

impl CustomerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::ErasureRequested => "erasureRequested",
            Self::Erased => "erased",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Active, Self::ErasureRequested, Self::Erased]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A postal address (personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    #[schemars(schema_with = "crate::domain::field_rules::address_line1_schema")]
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::domain::field_rules::optional_address_line2_schema")]
    pub line2: Option<String>,
    #[schemars(schema_with = "crate::domain::field_rules::city_schema")]
    pub city: String,
    #[schemars(schema_with = "crate::domain::field_rules::postal_code_schema")]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    #[schemars(schema_with = "crate::domain::field_rules::country_schema")]
    pub country: String,
}

impl Address {
    pub fn validate(&self, prefix: &str, check: &mut Validation) {
        rules::ADDRESS_LINE1.check(check, &format!("{prefix}.line1"), &self.line1);
        if let Some(line2) = &self.line2 {
            rules::ADDRESS_LINE2.check(check, &format!("{prefix}.line2"), line2);
        }
        rules::CITY.check(check, &format!("{prefix}.city"), &self.city);
        rules::POSTAL_CODE.check(check, &format!("{prefix}.postalCode"), &self.postal_code);
        COUNTRY.check(check, &format!("{prefix}.country"), &self.country);
    }
}

/// Which channels a customer wants notifications on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationPreferences {
    pub in_app: bool,
    pub email: bool,
    pub sms: bool,
}

impl Default for NotificationPreferences {
    fn default() -> Self {
        Self {
            in_app: true,
            email: true,
            sms: false,
        }
    }
}

/// A stored customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub email: String,
    /// E.164: `+`, the country code and the number, no formatting (`+442079460001`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    pub preferences: NotificationPreferences,
    pub status: CustomerStatus,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    /// Last order, login or update: what retention counts inactivity from.
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub last_activity_at: DateTime<Utc>,
    #[serde(skip)]
    pub etag: String,
}

/// The body of `POST /customers` and `PUT /customers/{id}` (a full replacement of the profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerInput {
    #[schemars(schema_with = "crate::domain::field_rules::customer_name_schema")]
    pub name: String,
    #[schemars(schema_with = "crate::domain::field_rules::email_schema")]
    pub email: String,
    /// With its country code, as people write it (`+44 20 7946 0001`); stored in E.164.
    #[serde(
        default,
        deserialize_with = "crate::domain::phone::deserialize_normalised"
    )]
    #[schemars(schema_with = "crate::domain::field_rules::optional_phone_schema")]
    pub phone: Option<String>,
    #[serde(default)]
    pub address: Option<Address>,
    #[serde(default)]
    pub preferences: Option<NotificationPreferences>,
}

impl CustomerInput {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut check = Validation::new();
        rules::CUSTOMER_NAME.check(&mut check, "name", &self.name);
        check.email("email", &self.email);
        if let Some(phone) = &self.phone {
            check.phone("phone", phone);
        }
        if let Some(address) = &self.address {
            address.validate("address", &mut check);
        }
        check.finish()
    }
}
