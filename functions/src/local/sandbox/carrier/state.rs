//! The sandbox carrier's memory: shipments with their rates and labels, trackers, and the
//! drills' switches.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::shipping::easypost::{WireRate, WireShipment, WireTracker, WireTrackingDetail};

/// The statuses a sandbox tracker walks through, one per step.
const STEPS: [(&str, &str); 4] = [
    ("pre_transit", "Shipping label created"),
    ("in_transit", "Arrived at facility"),
    ("out_for_delivery", "Out for delivery"),
    ("delivered", "Delivered"),
];

/// A bought label.
pub struct Bought {
    pub rate: WireRate,
    pub tracking_code: String,
    pub tracker_id: String,
}

/// A shipment as created.
pub struct Stored {
    pub id: String,
    pub rates: Vec<WireRate>,
    pub bought: Option<Bought>,
}

/// A tracker and when its label was bought (its steps count from then).
pub struct Tracker {
    pub id: String,
    pub tracking_code: String,
    pub bought_at: DateTime<Utc>,
}

/// Everything the sandbox remembers.
#[derive(Default)]
pub struct Memory {
    pub shipments: HashMap<String, Stored>,
    pub trackers: HashMap<String, Tracker>,
    pub calls: u64,
    pub labels_bought: u64,
    pub fail_next: u32,
    pub fail_status: u16,
    pub delay: Duration,
    pub max_age: Option<u64>,
    next: u64,
}

impl Memory {
    /// A new id with EasyPost's prefix (`shp`, `rate`, `trk`).
    pub fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}_{:032x}", self.next)
    }
}

/// The memory behind a lock.
#[derive(Default)]
pub struct Store(Mutex<Memory>);

impl Store {
    pub fn lock(&self) -> MutexGuard<'_, Memory> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The shipment as EasyPost shows it.
pub fn shipment_view(stored: &Stored, base_url: &str) -> WireShipment {
    let bought = stored.bought.as_ref();
    WireShipment {
        id: stored.id.clone(),
        rates: stored.rates.clone(),
        tracking_code: bought.map(|b| b.tracking_code.clone()),
        postage_label: bought.map(|_| shared::shipping::easypost::WireLabel {
            label_url: Some(format!("{base_url}/labels/{}.png", stored.id)),
        }),
        selected_rate: bought.map(|b| shared::shipping::easypost::WireSelectedRate {
            id: b.rate.id.clone(),
            carrier: b.rate.carrier.clone(),
            service: b.rate.service.clone(),
        }),
        tracker: bought.map(|b| shared::shipping::easypost::WireTrackerRef {
            id: b.tracker_id.clone(),
            status: Some("pre_transit".into()),
        }),
    }
}

/// The tracker as EasyPost shows it `now`: one step reached every `step` since the label.
pub fn tracker_view(tracker: &Tracker, step: Duration, now: DateTime<Utc>) -> WireTracker {
    let step = chrono::Duration::from_std(step).unwrap_or_else(|_| chrono::Duration::seconds(30));
    let elapsed = now - tracker.bought_at;
    let reached = if step <= chrono::Duration::zero() {
        STEPS.len() - 1
    } else {
        let steps = elapsed.num_milliseconds() / step.num_milliseconds().max(1);
        usize::try_from(steps).unwrap_or(0).min(STEPS.len() - 1)
    };
    let details = STEPS[..=reached]
        .iter()
        .enumerate()
        .map(|(index, (status, message))| WireTrackingDetail {
            message: Some((*message).to_owned()),
            status: (*status).to_owned(),
            datetime: (tracker.bought_at + step * index as i32)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
        .collect();
    WireTracker {
        id: tracker.id.clone(),
        tracking_code: tracker.tracking_code.clone(),
        status: STEPS[reached].0.to_owned(),
        est_delivery_date: Some(
            (tracker.bought_at + step * (STEPS.len() as i32 - 1))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        tracking_details: details,
    }
}

/// Three rates for a parcel of `weight` ounces.
pub fn rates_for(memory: &mut Memory, shipment_id: &str, weight: f64) -> Vec<WireRate> {
    let base = (weight.max(1.0) * 5.0).round() as i64;
    [
        ("GroundAdvantage", 450, 5),
        ("Priority", 790, 2),
        ("Express", 2_850, 1),
    ]
    .into_iter()
    .map(|(service, cents, days)| WireRate {
        id: memory.id("rate"),
        object: "Rate".into(),
        carrier: "USPS".into(),
        service: service.into(),
        rate: shared::shipping::easypost::decimal_of(cents + base),
        currency: "USD".into(),
        delivery_days: Some(days),
        shipment_id: Some(shipment_id.to_owned()),
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracker_moves_one_step_per_period_and_stops_at_delivered() {
        let bought_at = chrono::Utc::now();
        let tracker = Tracker {
            id: "trk_1".into(),
            tracking_code: "9400".into(),
            bought_at,
        };
        let step = Duration::from_secs(10);
        let at = |seconds: i64| bought_at + chrono::Duration::seconds(seconds);
        let view = tracker_view(&tracker, step, at(0));
        assert_eq!(
            (view.status.as_str(), view.tracking_details.len()),
            ("pre_transit", 1)
        );
        let view = tracker_view(&tracker, step, at(25));
        assert_eq!(
            (view.status.as_str(), view.tracking_details.len()),
            ("out_for_delivery", 3)
        );
        let view = tracker_view(&tracker, step, at(3_600));
        assert_eq!(
            (view.status.as_str(), view.tracking_details.len()),
            ("delivered", 4)
        );
    }

    #[test]
    fn rates_grow_with_weight_and_are_decimal_strings() {
        let mut memory = Memory::default();
        let light = rates_for(&mut memory, "shp_1", 16.0);
        let heavy = rates_for(&mut memory, "shp_2", 160.0);
        let cents = |rates: &[WireRate]| -> Vec<i64> {
            rates
                .iter()
                .map(|rate| shared::shipping::easypost::cents_of(&rate.rate).unwrap())
                .collect()
        };
        assert!(cents(&light).iter().zip(cents(&heavy)).all(|(l, h)| *l < h));
        assert_ne!(light[0].id, heavy[0].id, "every rate its own id");
    }
}
