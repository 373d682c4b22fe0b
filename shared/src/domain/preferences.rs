//! Notification preferences: per event type (the kinds of notification the app creates, declared
//! once in [`EventType`]), which channels ([`Channel`]: `realtime`, `email`, `sms`) a customer
//! wants. Anything a customer never set is on ([`Switches::ALL_ON`]); the profile's
//! `preferences` (`inApp`, `email`, `sms`) stay the master switches of order and payment
//! notifications, and marketing still needs the customer's consent. The notification itself is
//! always stored (the in-app list is the record); a switch only decides the live push and the
//! email/SMS message.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::{json_schema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use super::validation::{Invalid, Validation};

/// The kinds of notification the app creates; each string is also the notification's
/// `category`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    OrderCreated,
    OrderConfirmed,
    OrderShipped,
    OrderDelivered,
    OrderCancelled,
    OrderReturned,
    PaymentCaptured,
    PaymentFailed,
    PaymentRefunded,
    /// A marketing message (`POST /notifications` with a `purpose`; consent needed too).
    Marketing,
    /// A service message from staff (`POST /notifications` without a `purpose`; in the app only).
    Message,
}

impl EventType {
    /// Every event type, in a fixed order.
    pub const ALL: [EventType; 11] = [
        Self::OrderCreated,
        Self::OrderConfirmed,
        Self::OrderShipped,
        Self::OrderDelivered,
        Self::OrderCancelled,
        Self::OrderReturned,
        Self::PaymentCaptured,
        Self::PaymentFailed,
        Self::PaymentRefunded,
        Self::Marketing,
        Self::Message,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderCreated => "order.created",
            Self::OrderConfirmed => "order.confirmed",
            Self::OrderShipped => "order.shipped",
            Self::OrderDelivered => "order.delivered",
            Self::OrderCancelled => "order.cancelled",
            Self::OrderReturned => "order.returned",
            Self::PaymentCaptured => "payment.captured",
            Self::PaymentFailed => "payment.failed",
            Self::PaymentRefunded => "payment.refunded",
            Self::Marketing => "marketing",
            Self::Message => "message",
        }
    }

    /// The event type of a notification category (`order.shipped`, `marketing`, ...).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

/// A way a notification reaches the customer besides the in-app list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The live push to the customer's open connections (SignalR).
    Realtime,
    /// A message for the email sender (`notifications-outbound`).
    Email,
    /// A message for the SMS sender (`notifications-outbound`).
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Self::Realtime, Self::Email, Self::Sms];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Realtime => "realtime",
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|channel| channel.as_str() == text)
    }

    fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

/// The channels of one event type, each on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Switches {
    pub realtime: bool,
    pub email: bool,
    pub sms: bool,
}

impl Switches {
    /// The default of every event type: every channel on.
    pub const ALL_ON: Switches = Switches {
        realtime: true,
        email: true,
        sms: true,
    };

    pub fn allows(self, channel: Channel) -> bool {
        match channel {
            Channel::Realtime => self.realtime,
            Channel::Email => self.email,
            Channel::Sms => self.sms,
        }
    }

    fn set(&mut self, channel: Channel, on: bool) {
        match channel {
            Channel::Realtime => self.realtime = on,
            Channel::Email => self.email = on,
            Channel::Sms => self.sms = on,
        }
    }
}

/// The ETag of preferences never set (the defaults), so a `PUT` may name it in `If-Match`.
pub const DEFAULT_ETAG: &str = "defaults";

/// A customer's preferences: every event type with its switches (`GET`/`PUT
/// /customers/{id}/preferences`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    pub customer_id: String,
    /// Every event type of [`EventType::ALL`], by name.
    pub event_types: BTreeMap<String, Switches>,
    /// When the customer (or staff) last set them; absent while they are the defaults.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::domain::timestamp::option::serialize"
    )]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub etag: String,
}

impl Preferences {
    /// The preferences of a customer who never set any: every channel on.
    pub fn defaults(customer_id: &str) -> Self {
        Self {
            customer_id: customer_id.to_owned(),
            event_types: EventType::ALL
                .into_iter()
                .map(|kind| (kind.as_str().to_owned(), Switches::ALL_ON))
                .collect(),
            updated_at: None,
            etag: DEFAULT_ETAG.to_owned(),
        }
    }

    /// The switches of `kind` (on when not stored: an event type added after they were set).
    pub fn switches(&self, kind: EventType) -> Switches {
        self.event_types
            .get(kind.as_str())
            .copied()
            .unwrap_or(Switches::ALL_ON)
    }

    /// Whether notifications of `category` may use `channel` (an unknown category: yes).
    pub fn allows(&self, category: &str, channel: Channel) -> bool {
        EventType::parse(category).is_none_or(|kind| self.switches(kind).allows(channel))
    }

    /// Every event type, what is stored over the defaults (names no longer declared dropped).
    pub fn completed(mut self) -> Self {
        let mut all = Self::defaults(&self.customer_id).event_types;
        for (name, switches) in std::mem::take(&mut self.event_types) {
            if let Some(slot) = all.get_mut(&name) {
                *slot = switches;
            }
        }
        self.event_types = all;
        self
    }
}

impl schemars::JsonSchema for Preferences {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NotificationPreferencesDocument".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "Every event type with its channels; absent updatedAt: never set, the defaults (every channel on)",
            "required": ["customerId", "eventTypes"],
            "properties": {
                "customerId": {"type": "string"},
                "eventTypes": event_types_schema(true),
                "updatedAt": {"type": "string", "format": "date-time"}
            }
        })
    }
}

/// The body of `PUT /customers/{id}/preferences`: the whole document. Event types and channels
/// left out are on (the defaults); unknown ones are refused, naming the allowed ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreferencesInput {
    pub event_types: BTreeMap<String, BTreeMap<String, bool>>,
}

impl schemars::JsonSchema for PreferencesInput {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NotificationPreferencesInput".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "Per event type, each channel on or off; event types and channels left out are on",
            "additionalProperties": false,
            "required": ["eventTypes"],
            "properties": {"eventTypes": event_types_schema(false)}
        })
    }
}

/// The schema of `eventTypes`: one property per event type, each with the three channels.
fn event_types_schema(complete: bool) -> serde_json::Value {
    let channels: serde_json::Map<String, serde_json::Value> = Channel::ALL
        .iter()
        .map(|channel| {
            (
                channel.as_str().to_owned(),
                serde_json::json!({"type": "boolean"}),
            )
        })
        .collect();
    let mut switches = serde_json::json!({
        "type": "object", "additionalProperties": false, "properties": channels,
    });
    let kinds: Vec<&str> = EventType::ALL.map(EventType::as_str).to_vec();
    let mut schema = serde_json::json!({"type": "object", "additionalProperties": false});
    if complete {
        switches["required"] = serde_json::json!(Channel::ALL.map(Channel::as_str));
        schema["required"] = serde_json::json!(kinds);
    }
    schema["properties"] = kinds
        .iter()
        .map(|kind| ((*kind).to_owned(), switches.clone()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    schema
}

impl PreferencesInput {
    /// The document it asks for, or every unknown event type and channel.
    pub fn resolve(&self, customer_id: &str) -> Result<Preferences, Invalid> {
        let mut check = Validation::new();
        let mut preferences = Preferences::defaults(customer_id);
        for (name, channels) in &self.event_types {
            let Some(kind) = EventType::parse(name) else {
                check.error(
                    format!("eventTypes.{name}"),
                    format!("unknown event type; allowed: {}", EventType::names()),
                );
                continue;
            };
            let mut switches = Switches::ALL_ON;
            for (channel_name, on) in channels {
                match Channel::parse(channel_name) {
                    Some(channel) => switches.set(channel, *on),
                    None => check.error(
                        format!("eventTypes.{name}.{channel_name}"),
                        format!("unknown channel; allowed: {}", Channel::names()),
                    ),
                }
            }
            preferences
                .event_types
                .insert(kind.as_str().to_owned(), switches);
        }
        check.finish().map(|()| preferences)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> PreferencesInput {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_switch_every_channel_of_every_event_type_on() {
        let defaults = Preferences::defaults("c-1");
        assert_eq!(defaults.event_types.len(), EventType::ALL.len());
        assert!(defaults
            .event_types
            .values()
            .all(|s| *s == Switches::ALL_ON));
        assert_eq!(defaults.etag, DEFAULT_ETAG);
        assert!(defaults.allows("order.shipped", Channel::Sms));
    }

    #[test]
    fn what_a_put_leaves_out_is_on_and_what_it_says_is_kept() {
        let resolved = input(
            serde_json::json!({"eventTypes": {"order.shipped": {"realtime": false, "sms": false}}}),
        )
        .resolve("c-1")
        .unwrap();
        let shipped = resolved.switches(EventType::OrderShipped);
        assert_eq!(
            shipped,
            Switches {
                realtime: false,
                email: true,
                sms: false
            }
        );
        assert!(!resolved.allows("order.shipped", Channel::Realtime));
        assert!(resolved.allows("order.delivered", Channel::Realtime));
        assert_eq!(resolved.switches(EventType::Marketing), Switches::ALL_ON);
    }

    #[test]
    fn unknown_event_types_and_channels_are_each_named_with_the_allowed_ones() {
        let invalid = input(serde_json::json!({"eventTypes": {
            "order.lost": {"email": true},
            "marketing": {"pigeon": false, "email": false}
        }}))
        .resolve("c-1")
        .unwrap_err();
        let fields: Vec<&str> = invalid.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["eventTypes.marketing.pigeon", "eventTypes.order.lost"]
        );
        assert!(invalid.0[0].message.contains("realtime, email, sms"));
        assert!(invalid.0[1].message.contains("order.created"));
        assert!(invalid.0[1].message.contains("payment.refunded"));
    }

    #[test]
    fn stored_preferences_are_completed_with_event_types_declared_since() {
        let mut stored = Preferences::defaults("c-1");
        stored.event_types.retain(|name, _| name == "marketing");
        stored.event_types.insert(
            "marketing".into(),
            Switches {
                realtime: false,
                email: false,
                sms: false,
            },
        );
        stored
            .event_types
            .insert("retired".into(), Switches::ALL_ON);
        let completed = stored.completed();
        assert_eq!(completed.event_types.len(), EventType::ALL.len());
        assert!(!completed.allows("marketing", Channel::Email));
        assert!(completed.allows("payment.failed", Channel::Email));
    }

    #[test]
    fn every_event_type_parses_back() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventType::parse("payment.authorized"), None);
    }
}
