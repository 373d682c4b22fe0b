//! The consent gate: no marketing message leaves without the customer's current consent for its
//! purpose (GDPR art. 7). One pure check, called at the one point where a marketing message is
//! written for sending; service messages (order and payment notifications) have no purpose and
//! do not pass through it.

use super::consent::{ConsentRecord, Purpose};

/// Why a marketing message was not sent (ids only; nothing about the customer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The customer's latest record for the purpose is a withdrawal, or there is none.
    #[error("the customer has not consented to {}", .0.as_str())]
    NoConsent(Purpose),
    /// The purpose is not one a message is sent for (`profiling`).
    #[error("{} is not a purpose of messages", .0.as_str())]
    NotAMessagePurpose(Purpose),
}

impl Refusal {
    /// The audit action that records the refusal (`notification.marketing.refused`).
    pub const AUDIT_ACTION: &'static str = "notification.marketing.refused";
}

/// The outbound channel of a marketing purpose (`email`, `sms`), if it is one.
pub fn channel_of(purpose: Purpose) -> Option<&'static str> {
    match purpose {
        Purpose::MarketingEmail => Some("email"),
        Purpose::MarketingSms => Some("sms"),
        Purpose::Profiling => None,
    }
}

/// Whether a message for `purpose` may go to the customer whose consent `history` (oldest
/// first) is: only when the latest record for the purpose is a grant.
pub fn check(purpose: Purpose, history: &[ConsentRecord]) -> Result<&'static str, Refusal> {
    let channel = channel_of(purpose).ok_or(Refusal::NotAMessagePurpose(purpose))?;
    let latest = history
        .iter()
        .rev()
        .find(|record| record.purpose == purpose);
    match latest {
        Some(record) if record.granted => Ok(channel),
        _ => Err(Refusal::NoConsent(purpose)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consent::ConsentChannel;

    fn record(purpose: Purpose, granted: bool) -> ConsentRecord {
        ConsentRecord {
            id: "r".into(),
            tenant_id: "t1".into(),
            customer_id: "c-1".into(),
            purpose,
            granted,
            notice_version: "2025-03".into(),
            channel: ConsentChannel::Web,
            recorded_at: chrono::DateTime::UNIX_EPOCH,
            recorded_by: "c-1".into(),
        }
    }

    #[test]
    fn a_current_grant_lets_the_message_through_on_its_channel() {
        let history = [record(Purpose::MarketingSms, true)];
        assert_eq!(check(Purpose::MarketingSms, &history), Ok("sms"));
    }

    #[test]
    fn a_withdrawal_after_the_grant_or_no_record_refuses() {
        let withdrawn = [
            record(Purpose::MarketingEmail, true),
            record(Purpose::MarketingEmail, false),
        ];
        let refused = Err(Refusal::NoConsent(Purpose::MarketingEmail));
        assert_eq!(check(Purpose::MarketingEmail, &withdrawn), refused);
        assert_eq!(check(Purpose::MarketingEmail, &[]), refused);
        // Another purpose's grant does not count.
        let other = [record(Purpose::MarketingSms, true)];
        assert_eq!(check(Purpose::MarketingEmail, &other), refused);
    }

    #[test]
    fn profiling_is_no_message_purpose() {
        let history = [record(Purpose::Profiling, true)];
        assert_eq!(
            check(Purpose::Profiling, &history),
            Err(Refusal::NotAMessagePurpose(Purpose::Profiling))
        );
    }
}
