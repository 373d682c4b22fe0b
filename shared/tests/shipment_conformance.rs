//! The shipment store's conformance suite, on both adapters (SQLite, and Cosmos DB on the SDK's
//! in-memory emulator): one shipment per order recorded once with its disclosure audit entry,
//! updates read back, tenant isolation, the customer's shipments for the export, the tracking
//! scan (undelivered shipments with a tracker, across tenants, in key order), and the GDPR
//! erasure of shipments (label URL removed, references and status kept, each counted once).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shared::domain::audit::AuditEntry;
use shared::domain::customer::{Customer, CustomerStatus, NotificationPreferences};
use shared::domain::gdpr::{ErasureRecord, ErasureStatus};
use shared::domain::masking::{Masker, PseudonymKey};
use shared::domain::shipment::{Shipment, TrackingStatus};
use shared::domain::tenant::TenantId;
use shared::store::cosmos::CosmosOptions;
use shared::store::sqlite::Db;
use shared::store::{
    AuditFilter, ErasureStart, ErasureStep, PageRequest, ShipmentBegun, Store, StoreError,
    TrackingCursor,
};

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("app.db")).unwrap();
    (Arc::new(db), dir)
}

async fn cosmos() -> (Arc<dyn Store>, tempfile::TempDir) {
    let cosmos = shared::store::cosmos::in_memory(CosmosOptions::for_emulator(), vec![])
        .await
        .unwrap();
    (Arc::new(cosmos.store), tempfile::tempdir().unwrap())
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

fn now() -> DateTime<Utc> {
    shared::domain::now()
}

fn disclosure(tenant: &str, order: &str, customer: &str) -> AuditEntry {
    AuditEntry::now(
        tenant,
        "system:ShippingLabel",
        "gdpr.disclosure.easypost",
        "order",
        order,
        "evt-1",
    )
    .about_customer(customer)
}

fn requested(tenant: &str, order: &str, customer: &str) -> Shipment {
    Shipment::requested(tenant, order, customer, "easypost", &format!("evt-{order}"))
}

/// The shipment with its label bought and its tracker at `status`.
fn labelled(mut shipment: Shipment, status: TrackingStatus) -> Shipment {
    shipment.status = status;
    shipment.carrier_shipment_id = Some(format!("shp_{}", shipment.order_id));
    shipment.service = Some("USPS Priority".into());
    shipment.tracking_number = Some(format!("EZ{}", shipment.order_id));
    shipment.label_url = Some(format!("https://labels.example/{}.png", shipment.order_id));
    shipment.tracker_id = Some(format!("trk_{}", shipment.order_id));
    shipment.updated_at = now();
    shipment
}

async fn begin(store: &dyn Store, shipment: Shipment) -> ShipmentBegun {
    let tenant = tenant(&shipment.tenant_id.clone());
    let audit = disclosure(tenant.as_str(), &shipment.order_id, &shipment.customer_id);
    store
        .begin_shipment(&tenant, shipment, audit)
        .await
        .unwrap()
}

async fn a_shipment_is_recorded_once_with_its_disclosure(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let first = begin(store, requested("t1", "o-1", "c-1")).await;
    assert!(matches!(first, ShipmentBegun::New(_)), "{first:?}");
    let mut again = requested("t1", "o-1", "c-1");
    again.event_id = "evt-duplicate".into();
    let second = begin(store, again).await;
    match &second {
        ShipmentBegun::Existing(existing) => {
            assert_eq!(existing.event_id, "evt-o-1", "the first one is kept");
            assert_eq!(existing.status, TrackingStatus::Requested);
        }
        other => panic!("a second shipment for the order: {other:?}"),
    }
    let trail = store
        .list_audit(
            &tenant("t1"),
            AuditFilter {
                customer_id: Some("c-1".into()),
                ..AuditFilter::default()
            },
            PageRequest::first(50),
        )
        .await
        .unwrap();
    let disclosures: Vec<_> = trail
        .items
        .iter()
        .filter(|entry| entry.action == "gdpr.disclosure.easypost")
        .collect();
    assert_eq!(
        disclosures.len(),
        1,
        "one disclosure, written with the first record only"
    );
    assert_eq!(disclosures[0].target_id, "o-1");
}

async fn updates_are_read_back_and_tenants_are_apart(store: Arc<dyn Store>) {
    let store = store.as_ref();
    begin(store, requested("t1", "o-1", "c-1")).await;
    let saved = labelled(requested("t1", "o-1", "c-1"), TrackingStatus::InTransit);
    store
        .save_shipment(&tenant("t1"), saved.clone())
        .await
        .unwrap();
    let read = store
        .get_shipment(&tenant("t1"), "o-1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(read.tracking_number, saved.tracking_number);
    assert_eq!(read.label_url, saved.label_url);
    assert_eq!(read.status, TrackingStatus::InTransit);
    assert_eq!(read.tenant_id, "t1");
    assert_eq!(
        store.get_shipment(&tenant("t2"), "o-1").await.unwrap(),
        None,
        "another tenant sees nothing"
    );
    assert!(matches!(
        store
            .save_shipment(&tenant("t2"), requested("t2", "o-1", "c-1"))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.get_shipment(&tenant("t1"), "o-404").await.unwrap(),
        None
    );
    let mine = store
        .customer_shipments(&tenant("t1"), "c-1")
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert!(store
        .customer_shipments(&tenant("t1"), "c-2")
        .await
        .unwrap()
        .is_empty());
}

async fn tracking_scans_undelivered_shipments_across_tenants(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let cases = [
        ("t1", "o-1", Some(TrackingStatus::InTransit)),
        ("t1", "o-2", Some(TrackingStatus::Delivered)),
        ("t1", "o-3", None),
        ("t2", "o-1", Some(TrackingStatus::PreTransit)),
        ("t2", "o-4", Some(TrackingStatus::OutForDelivery)),
    ];
    for (tenant_name, order, status) in cases {
        begin(store, requested(tenant_name, order, "c-1")).await;
        if let Some(status) = status {
            let shipment = labelled(requested(tenant_name, order, "c-1"), status);
            store
                .save_shipment(&tenant(tenant_name), shipment)
                .await
                .unwrap();
        }
    }
    let keys = |found: Vec<Shipment>| -> Vec<(String, String)> {
        found
            .into_iter()
            .map(|s| (s.tenant_id, s.order_id))
            .collect()
    };
    let all = keys(store.shipments_to_track(None, 10).await.unwrap());
    let pair = |t: &str, o: &str| (t.to_owned(), o.to_owned());
    assert_eq!(
        all,
        vec![pair("t1", "o-1"), pair("t2", "o-1"), pair("t2", "o-4")],
        "with a tracker, not delivered, in (tenant, order) order"
    );
    let first = keys(store.shipments_to_track(None, 1).await.unwrap());
    assert_eq!(first, vec![pair("t1", "o-1")]);
    let cursor = TrackingCursor {
        tenant_id: "t1".into(),
        order_id: "o-1".into(),
    };
    let rest = keys(store.shipments_to_track(Some(&cursor), 10).await.unwrap());
    assert_eq!(rest, vec![pair("t2", "o-1"), pair("t2", "o-4")]);
}

async fn the_first_carrier_shipment_claimed_wins(store: Arc<dyn Store>) {
    let store = store.as_ref();
    begin(store, requested("t1", "o-1", "c-1")).await;
    let first = store
        .claim_carrier_shipment(&tenant("t1"), "o-1", "shp_first")
        .await
        .unwrap();
    assert_eq!(first.carrier_shipment_id.as_deref(), Some("shp_first"));
    let second = store
        .claim_carrier_shipment(&tenant("t1"), "o-1", "shp_second")
        .await
        .unwrap();
    assert_eq!(
        second.carrier_shipment_id.as_deref(),
        Some("shp_first"),
        "the later claim gets the first one back"
    );
    assert!(matches!(
        store
            .claim_carrier_shipment(&tenant("t2"), "o-1", "shp_x")
            .await,
        Err(StoreError::NotFound)
    ));
}

fn customer(id: &str) -> Customer {
    let at = now();
    Customer {
        id: id.into(),
        tenant_id: "t1".into(),
        name: format!("Name of {id}"),
        email: format!("{id}@example.org"),
        phone: None,
        address: None,
        preferences: NotificationPreferences::default(),
        status: CustomerStatus::Active,
        created_at: at,
        updated_at: at,
        last_activity_at: at,
        etag: String::new(),
    }
}

fn erasure_request(customer: &str) -> ErasureRecord {
    ErasureRecord {
        id: format!("r-{customer}"),
        tenant_id: "t1".into(),
        customer_id: customer.into(),
        requested_by: "actor-1".into(),
        status: ErasureStatus::Accepted,
        requested_at: now(),
        updated_at: now(),
        queued_at: None,
        report: None,
    }
}

async fn an_erasure_removes_labels_and_keeps_the_references(store: Arc<dyn Store>) {
    let store = store.as_ref();
    for id in ["c-1", "c-2"] {
        let audit = AuditEntry::now("t1", "actor-1", "customer.create", "customer", id, "corr");
        store
            .create_customer(&tenant("t1"), customer(id), audit)
            .await
            .unwrap();
    }
    for (order, customer) in [("o-1", "c-1"), ("o-2", "c-1"), ("o-9", "c-2")] {
        begin(store, requested("t1", order, customer)).await;
        let shipment = labelled(requested("t1", order, customer), TrackingStatus::InTransit);
        store.save_shipment(&tenant("t1"), shipment).await.unwrap();
    }
    let mut progress = match store
        .start_erasure(&tenant("t1"), erasure_request("c-1"))
        .await
        .unwrap()
    {
        ErasureStart::Run { progress, .. } => progress,
        other => panic!("the erasure does not run: {other:?}"),
    };
    let key = PseudonymKey::new("a-test-key-that-is-long-enough-0001").unwrap();
    let masker = Masker::new(key, "t1", "c-1", &[]);
    for _ in 0..10 {
        if progress.is_done(ErasureStep::Shipments) {
            break;
        }
        progress = store
            .erase_batch(&tenant("t1"), "r-c-1", ErasureStep::Shipments, &masker, 1)
            .await
            .unwrap();
    }
    assert!(progress.is_done(ErasureStep::Shipments));
    assert_eq!(
        progress.counts()["shipments"],
        2,
        "each of c-1's shipments once"
    );
    for order in ["o-1", "o-2"] {
        let erased = store
            .get_shipment(&tenant("t1"), order)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            erased.label_url, None,
            "{order}: the label shows the address"
        );
        assert!(erased.erased_at.is_some(), "{order}");
        assert_eq!(erased.tracking_number, Some(format!("EZ{order}")), "kept");
        assert_eq!(erased.status, TrackingStatus::InTransit, "kept");
    }
    let other = store
        .get_shipment(&tenant("t1"), "o-9")
        .await
        .unwrap()
        .unwrap();
    assert!(
        other.label_url.is_some() && other.erased_at.is_none(),
        "c-2 untouched"
    );
}

macro_rules! adapter {
    ($adapter:ident: $($behaviour:ident),* $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    let (store, _keep) = super::$adapter().await;
                    super::$behaviour(store).await;
                }
            )*
        }
    };
}

macro_rules! every_behaviour {
    ($adapter:ident) => {
        adapter!($adapter:
            a_shipment_is_recorded_once_with_its_disclosure,
            updates_are_read_back_and_tenants_are_apart,
            tracking_scans_undelivered_shipments_across_tenants,
            the_first_carrier_shipment_claimed_wins,
            an_erasure_removes_labels_and_keeps_the_references,
        );
    };
}

every_behaviour!(sqlite);
every_behaviour!(cosmos);
