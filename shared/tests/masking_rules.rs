//! The GDPR masking rules (`shared::domain::masking`): the declaration covers every personal
//! field, names only fields that exist, has one rule per field, and applying it leaves nothing
//! of the original values; pseudonyms are keyed, stable and tenant-scoped.

use chrono::Utc;
use serde_json::Value;
use shared::domain::audit::AuditEntry;
use shared::domain::consent::{ConsentChannel, ConsentRecord, Purpose};
use shared::domain::customer::{Address, Customer, CustomerStatus, NotificationPreferences};
use shared::domain::masking::{
    record_action, rules_for, Entity, Masker, PseudonymKey, RecordAction, Strategy, RULES,
    RULES_VERSION,
};
use shared::domain::order::{Order, OrderItem, OrderStatus, StatusChange};
use shared::domain::payment::{GatewayRefs, Payer, Payment, PaymentStatus, Refund, RefundStatus};
use shared::domain::shipment::{Shipment, TrackingStatus};

const KEY: &str = "a-test-key-that-is-long-enough-0001";

fn masker() -> Masker {
    Masker::new(PseudonymKey::new(KEY).unwrap(), "t1", "c-1", &[])
}

fn address() -> Address {
    Address {
        line1: "221B Baker Street".into(),
        line2: Some("Flat B".into()),
        city: "London".into(),
        postal_code: "NW1 6XE".into(),
        country: "GB".into(),
    }
}

fn customer() -> Customer {
    let at = Utc::now();
    Customer {
        id: "c-1".into(),
        tenant_id: "t1".into(),
        name: "Ada Lovelace".into(),
        email: "ada@example.org".into(),
        phone: Some("+442079460001".into()),
        address: Some(address()),
        preferences: NotificationPreferences::default(),
        status: CustomerStatus::Active,
        created_at: at,
        updated_at: at,
        last_activity_at: at,
        etag: "e".into(),
    }
}

fn order() -> Order {
    let at = Utc::now();
    Order {
        id: "o-1".into(),
        tenant_id: "t1".into(),
        customer_id: "c-1".into(),
        status: OrderStatus::Delivered,
        items: vec![OrderItem {
            product_id: "p-1".into(),
            product_name: "Widget".into(),
            quantity: 2,
            unit_price_cents: 1250,
        }],
        total_cents: 2500,
        currency: "EUR".into(),
        shipping_address: Some(address()),
        created_at: at,
        updated_at: at,
        etag: "e".into(),
    }
}

fn status_change() -> StatusChange {
    StatusChange {
        status: OrderStatus::Cancelled,
        at: Utc::now(),
        actor_id: "dev-client-c-1".into(),
        reason: Some("call me on +442079460001".into()),
    }
}

fn audit_entry() -> AuditEntry {
    AuditEntry::now(
        "t1",
        "dev-client-c-1",
        "customer.update",
        "customer",
        "c-1",
        "corr",
    )
    .about_customer("c-1")
}

fn refund() -> Refund {
    let at = Utc::now();
    Refund {
        id: "r-1".into(),
        amount_cents: 500,
        status: RefundStatus::Completed,
        gateway_refund_id: Some("PP-REFUND".into()),
        idempotency_key: "rk-1".into(),
        request_hash: "refund-hash".into(),
        reason: Some("Ada asked by phone, +442079460001".into()),
        created_at: at,
        updated_at: at,
    }
}

fn payment() -> Payment {
    let at = Utc::now();
    Payment {
        id: "pay-1".into(),
        tenant_id: "t1".into(),
        order_id: "o-1".into(),
        customer_id: "c-1".into(),
        provider: "paypal".into(),
        source_id: "vault-of-ada".into(),
        amount_cents: 2500,
        currency: "EUR".into(),
        status: PaymentStatus::PartiallyRefunded,
        captured_cents: 2500,
        captured_at: None,
        refunded_cents: 500,
        gateway: GatewayRefs {
            order_id: Some("PP-ORDER".into()),
            authorization_id: Some("PP-AUTH".into()),
            capture_id: Some("PP-CAPTURE".into()),
        },
        failure_code: None,
        payer: Some(Payer {
            name: Some("Ada Lovelace".into()),
            email: Some("ada@example.org".into()),
        }),
        erasure: None,
        refunds: vec![refund()],
        idempotency_key: "c-1/k-1".into(),
        request_hash: "payment-hash".into(),
        in_flight_until: None,
        created_at: at,
        updated_at: at,
        etag: "e".into(),
    }
}

/// The JSON form of a sample of `entity`, for entities whose records are masked.
/// A shipment with its label bought (every optional field present).
fn shipment() -> Shipment {
    let at = Utc::now();
    Shipment {
        order_id: "o-1".into(),
        tenant_id: "t1".into(),
        customer_id: "c-1".into(),
        carrier: "easypost".into(),
        status: TrackingStatus::InTransit,
        carrier_shipment_id: Some("shp_1".into()),
        service: Some("USPS Priority".into()),
        tracking_number: Some("9400100000000000000000".into()),
        label_url: Some("https://easypost-files.example/label.png".into()),
        tracker_id: Some("trk_1".into()),
        event_id: "e-1".into(),
        created_at: at,
        updated_at: at,
        delivered_at: None,
        erased_at: None,
    }
}

fn sample(entity: Entity) -> Option<Value> {
    match entity {
        Entity::Customer => serde_json::to_value(customer()).ok(),
        Entity::Order => serde_json::to_value(order()).ok(),
        Entity::OrderStatusChange => serde_json::to_value(status_change()).ok(),
        Entity::AuditEntry => serde_json::to_value(audit_entry()).ok(),
        Entity::Payment => {
            let mut sample = serde_json::to_value(payment()).ok()?;
            // `failureCode` is only present on failed payments.
            sample["failureCode"] = Value::String("INSTRUMENT_DECLINED".into());
            Some(sample)
        }
        Entity::PaymentRefund => serde_json::to_value(refund()).ok(),
        Entity::Consent => serde_json::to_value(consent("dev-client-c-1")).ok(),
        Entity::Shipment => serde_json::to_value(shipment()).ok(),
        _ => None,
    }
}

fn resolves(document: &Value, path: &str) -> bool {
    path.split('.')
        .try_fold(document, |value, key| value.get(key))
        .is_some()
}

#[test]
fn the_rules_are_versioned_and_name_each_field_once() {
    assert!(!RULES_VERSION.is_empty());
    let mut seen = std::collections::HashSet::new();
    for rule in RULES {
        assert!(
            seen.insert((rule.entity, rule.field)),
            "two rules for {:?}.{}",
            rule.entity,
            rule.field
        );
    }
}

#[test]
fn every_rule_names_a_field_that_exists() {
    for rule in RULES.iter().filter(|rule| rule.field != "*") {
        let document = sample(rule.entity)
            .unwrap_or_else(|| panic!("{:?} has field rules but no sample", rule.entity));
        assert!(
            resolves(&document, rule.field),
            "{:?}.{} is not a field of {document}",
            rule.entity,
            rule.field
        );
    }
}

#[test]
fn deleted_entities_have_only_the_record_rule() {
    for entity in [
        Entity::Notification,
        Entity::IdempotencyKey,
        Entity::ProcessedEvent,
        Entity::QueuedMessage,
    ] {
        assert_eq!(record_action(entity), RecordAction::Delete, "{entity:?}");
        assert_eq!(rules_for(entity).count(), 1, "{entity:?}");
    }
    for entity in [
        Entity::Customer,
        Entity::Order,
        Entity::OrderStatusChange,
        Entity::AuditEntry,
        Entity::Payment,
        Entity::PaymentRefund,
    ] {
        assert_eq!(record_action(entity), RecordAction::Mask, "{entity:?}");
    }
}

#[test]
fn every_personal_field_of_a_customer_is_destroyed_or_faked() {
    for field in ["name", "email", "phone", "address"] {
        let rule = rules_for(Entity::Customer)
            .find(|rule| rule.field == field)
            .unwrap_or_else(|| panic!("no rule for customer.{field}"));
        assert!(
            matches!(rule.strategy, Strategy::Destroy | Strategy::Fake(_)),
            "customer.{field}: {:?}",
            rule.strategy
        );
    }
}

#[test]
fn masking_leaves_nothing_of_the_personal_values() {
    let masker = masker();
    let personal = [
        "Ada Lovelace",
        "ada@example.org",
        "+442079460001",
        "221B Baker",
        "Flat B",
        "London",
        "NW1 6XE",
    ];
    for entity in [Entity::Customer, Entity::Order, Entity::OrderStatusChange] {
        let mut document = sample(entity).unwrap();
        assert!(
            masker.mask_document(entity, &mut document) > 0,
            "{entity:?}"
        );
        let text = document.to_string();
        for value in personal {
            assert!(
                !text.contains(value),
                "{entity:?} still holds {value:?}: {text}"
            );
        }
    }
    let mut order = sample(Entity::Order).unwrap();
    masker.mask_document(Entity::Order, &mut order);
    assert_eq!(
        (
            order["totalCents"].as_i64(),
            order["shippingAddress"]["country"].as_str()
        ),
        (Some(2500), Some("GB")),
        "bookkeeping facts are kept"
    );
}

#[test]
fn a_masked_payment_keeps_the_money_and_loses_the_payer() {
    let masker = masker();
    let original = payment();
    let at = Utc::now();
    let masked = masker.mask_payment(&original, at).unwrap().expect("masked");
    let text = serde_json::to_string(&masked).unwrap();
    for value in ["Ada", "ada@example.org", "+442079460001", "vault-of-ada"] {
        assert!(
            !text.contains(value),
            "the payment still holds {value:?}: {text}"
        );
    }
    assert_eq!(masked.payer, None);
    assert_eq!(masked.refunds[0].reason, None);
    assert!(masked.source_id.starts_with("psn-"), "{}", masked.source_id);
    let erasure = masked.erasure.as_ref().expect("marked erased");
    assert_eq!(
        (erasure.rules_version.as_str(), erasure.erased_at),
        (RULES_VERSION, at)
    );
    let mut expected = original.clone();
    expected.payer = None;
    expected.source_id.clone_from(&masked.source_id);
    expected.refunds[0].reason = None;
    expected.erasure.clone_from(&masked.erasure);
    assert_eq!(
        masked, expected,
        "everything else is kept, request hashes included"
    );
    assert_eq!(
        masker.mask_payment(&masked, Utc::now()).unwrap(),
        None,
        "an erased payment is not masked again"
    );
}

#[test]
fn every_field_of_a_payment_has_a_rule_or_is_bookkeeping() {
    let sample = sample(Entity::Payment).unwrap();
    let unruled: Vec<&String> = sample
        .as_object()
        .unwrap()
        .keys()
        .filter(|field| rules_for(Entity::Payment).all(|rule| rule.field != field.as_str()))
        .collect();
    // Not personal: technical fields and what other rules cover (refunds: PaymentRefund).
    let technical = [
        "tenantId",
        "provider",
        "refunds",
        "updatedAt",
        "etag",
        "inFlightUntil",
    ];
    let missing: Vec<&&String> = unruled
        .iter()
        .filter(|field| !technical.contains(&field.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "payment fields without a rule: {missing:?}"
    );
}

#[test]
fn audit_identifiers_of_the_customer_become_a_keyed_pseudonym_others_stay() {
    let masker = masker();
    let mut entry = sample(Entity::AuditEntry).unwrap();
    assert_eq!(masker.mask_document(Entity::AuditEntry, &mut entry), 3);
    assert_eq!(
        entry["customerId"], entry["targetId"],
        "the same customer, the same pseudonym"
    );
    assert_eq!(
        entry["customerId"],
        Value::String(masker.customer_pseudonym())
    );
    assert_ne!(entry["actorId"], "dev-client-c-1");
    let mut staff = serde_json::to_value(
        AuditEntry::now("t1", "dev-employee", "order.ship", "order", "o-1", "corr")
            .about_customer("c-1"),
    )
    .unwrap();
    masker.mask_document(Entity::AuditEntry, &mut staff);
    assert_eq!(
        (staff["actorId"].as_str(), staff["targetId"].as_str()),
        (Some("dev-employee"), Some("o-1")),
        "staff and orders are not the customer"
    );
}

fn consent(recorded_by: &str) -> ConsentRecord {
    ConsentRecord {
        id: "k-1".into(),
        tenant_id: "t1".into(),
        customer_id: "c-1".into(),
        purpose: Purpose::MarketingSms,
        granted: true,
        notice_version: "2025-03".into(),
        channel: ConsentChannel::Phone,
        recorded_at: Utc::now(),
        recorded_by: recorded_by.into(),
    }
}

#[test]
fn a_consent_keeps_its_proof_and_loses_its_subject() {
    let masker = masker();
    let original = consent("dev-client-c-1");
    let mut masked = serde_json::to_value(&original).unwrap();
    assert_eq!(masker.mask_document(Entity::Consent, &mut masked), 2);
    let masked: ConsentRecord = serde_json::from_value(masked).unwrap();
    assert_eq!(masked.customer_id, masker.customer_pseudonym());
    assert!(masked.recorded_by.starts_with("psn-"));
    let proof = |r: &ConsentRecord| {
        (
            r.purpose,
            r.granted,
            r.notice_version.clone(),
            r.channel,
            r.recorded_at,
        )
    };
    assert_eq!(proof(&masked), proof(&original));

    let mut by_staff = serde_json::to_value(consent("employee-7")).unwrap();
    masker.mask_document(Entity::Consent, &mut by_staff);
    assert_eq!(by_staff["recordedBy"], "employee-7", "staff stay named");
}

#[test]
fn pseudonyms_depend_on_the_key_and_the_tenant() {
    let key = PseudonymKey::new(KEY).unwrap();
    let other_key = PseudonymKey::new("another-key-that-is-long-enough-02").unwrap();
    assert_eq!(key.pseudonym("t1", "c-1"), key.pseudonym("t1", "c-1"));
    assert_ne!(key.pseudonym("t1", "c-1"), key.pseudonym("t2", "c-1"));
    assert_ne!(key.pseudonym("t1", "c-1"), other_key.pseudonym("t1", "c-1"));
    assert!(!key.pseudonym("t1", "c-1").contains("c-1"));
    assert!(PseudonymKey::new("short").is_err());
    assert_eq!(format!("{key:?}"), "PseudonymKey(redacted)");
}
