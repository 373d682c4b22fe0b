//! Breach detection: what a data-protection officer must hear about, noticed while the app
//! serves requests, without personal data.
//!
//! - [`SecurityEvent`], [`Rule`]: one finding (ids, counts, window), as it is written to the
//!   audit trail, announced on the `security-alerts` topic and listed to admins.
//! - [`Detector`], [`Thresholds`]: the rules, counted in sliding windows held by each instance
//!   of the app (see the README, "Breach detection", for what that means with several
//!   instances), each finding raised at most once per window.

mod detector;
mod event;
mod window;

pub use detector::{role_list, Detector, Observation, Thresholds};
pub use event::{Rule, SecurityEvent, PLATFORM_TENANT};
