//! The test payment sources: vault ids whose behaviour is fixed, so that every path of the
//! app's adapter can be tried by hand (see the module doc of `paypal`).

/// What a vaulted payment source does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `sandbox-ok`: everything succeeds.
    Ok,
    /// `sandbox-decline`: create order answers `422 INSTRUMENT_DECLINED`.
    Decline,
    /// `sandbox-deny`: the authorization is `DENIED`, a direct capture `DECLINED`.
    Deny,
    /// `sandbox-flaky`: two `503`s for each new `PayPal-Request-Id`, then processed.
    Flaky,
    /// `sandbox-timeout`: the first attempt of a request id is answered late.
    Timeout,
    /// `sandbox-slow`: captures are `PENDING`, then `COMPLETED` after a delay.
    Slow,
    /// `sandbox-capture-decline`: the authorization is `CREATED` (funds held), its capture
    /// answers `422 INSTRUMENT_DECLINED` and leaves it as it was (it may still be voided); a
    /// direct capture (intent `CAPTURE`) is `DECLINED`.
    CaptureDecline,
}

impl Behaviour {
    /// The behaviour of `vault_id`, if it is one of the test sources.
    pub fn of(vault_id: &str) -> Option<Self> {
        Some(match vault_id {
            "sandbox-ok" => Self::Ok,
            "sandbox-decline" => Self::Decline,
            "sandbox-deny" => Self::Deny,
            "sandbox-flaky" => Self::Flaky,
            "sandbox-timeout" => Self::Timeout,
            "sandbox-slow" => Self::Slow,
            "sandbox-capture-decline" => Self::CaptureDecline,
            _ => return None,
        })
    }
}

/// The kind of vaulted instrument named in `payment_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instrument {
    Card,
    PayPal,
}

impl Instrument {
    /// The key under `payment_source`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::PayPal => "paypal",
        }
    }
}
