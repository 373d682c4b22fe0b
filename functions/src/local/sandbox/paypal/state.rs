//! The sandbox's memory: orders, authorizations, captures, refunds, tokens, stored
//! `PayPal-Request-Id` results, attempt counts and webhook events, behind one mutex.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::money::Money;
use super::sources::{Behaviour, Instrument};

/// `intent` of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Authorize,
    Capture,
}

impl Intent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorize => "AUTHORIZE",
            Self::Capture => "CAPTURE",
        }
    }
}

/// What the caller put on the purchase unit and gets back everywhere.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    pub reference_id: Option<String>,
    pub custom_id: Option<String>,
    pub invoice_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Order {
    pub id: String,
    pub intent: Intent,
    pub behaviour: Behaviour,
    pub instrument: Instrument,
    pub payer_id: String,
    pub labels: Labels,
    pub amount: Money,
    pub authorization_id: Option<String>,
    pub capture_id: Option<String>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationStatus {
    Created,
    Denied,
    PartiallyCaptured,
    Captured,
    Voided,
}

impl AuthorizationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Denied => "DENIED",
            Self::PartiallyCaptured => "PARTIALLY_CAPTURED",
            Self::Captured => "CAPTURED",
            Self::Voided => "VOIDED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Authorization {
    pub id: String,
    pub order_id: String,
    pub amount: Money,
    pub status: AuthorizationStatus,
    pub captured_minor: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub expiration_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureStatus {
    Completed,
    Pending,
    Declined,
    PartiallyRefunded,
    Refunded,
}

impl CaptureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "COMPLETED",
            Self::Pending => "PENDING",
            Self::Declined => "DECLINED",
            Self::PartiallyRefunded => "PARTIALLY_REFUNDED",
            Self::Refunded => "REFUNDED",
        }
    }

    /// The one-letter status of the transactions report.
    pub fn report_code(self) -> &'static str {
        match self {
            Self::Pending => "P",
            Self::Declined => "D",
            Self::Completed | Self::PartiallyRefunded | Self::Refunded => "S",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Capture {
    pub id: String,
    pub order_id: String,
    pub authorization_id: Option<String>,
    pub amount: Money,
    pub status: CaptureStatus,
    pub final_capture: bool,
    pub invoice_id: Option<String>,
    pub refunded_minor: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Refund {
    pub id: String,
    pub capture_id: String,
    pub order_id: String,
    pub amount: Money,
    pub invoice_id: Option<String>,
    pub create_time: DateTime<Utc>,
}

/// What a `PayPal-Request-Id` produced, replayed as the resource's latest state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Order(String),
    Capture(String),
    Refund(String),
    Voided(String),
}

#[derive(Debug, Clone)]
pub struct StoredRequest {
    pub body: Value,
    pub outcome: Outcome,
}

/// A webhook event as sent: its raw body is fixed when the event happens.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub event_type: String,
    pub body: String,
    pub attempts: u32,
    pub delivered: u32,
}

#[derive(Debug, Default)]
pub struct Inner {
    pub orders: HashMap<String, Order>,
    pub authorizations: HashMap<String, Authorization>,
    pub captures: HashMap<String, Capture>,
    pub refunds: HashMap<String, Refund>,
    pub tokens: HashMap<String, Instant>,
    pub requests: HashMap<(String, String), StoredRequest>,
    pub attempts: BTreeMap<String, u32>,
    pub events: Vec<StoredEvent>,
    pub payers: HashMap<String, String>,
}

impl Inner {
    /// The order a payment resource belongs to, for its behaviour and labels.
    pub fn order(&self, id: &str) -> Option<&Order> {
        self.orders.get(id)
    }

    pub fn event_mut(&mut self, id: &str) -> Option<&mut StoredEvent> {
        self.events.iter_mut().find(|event| event.id == id)
    }
}

/// The mutex around [`Inner`] plus the token lifetime the admin route changes.
#[derive(Debug)]
pub struct Memory {
    inner: Mutex<Inner>,
    token_lifetime: Mutex<Duration>,
}

impl Memory {
    pub fn new(token_lifetime: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            token_lifetime: Mutex::new(token_lifetime),
        }
    }

    /// The state; a panic in another request does not lock the sandbox for good.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn token_lifetime(&self) -> Duration {
        *self
            .token_lifetime
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *self
            .token_lifetime
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = lifetime;
    }
}
