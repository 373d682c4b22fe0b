//! The ERP client against the fake ERP of `handler local`, over loopback HTTP: both SOAP
//! versions with both kinds of authentication, paging and checkpoints, the idempotent goods
//! movement, faults mapped to errors with the ERP's text, and the drills (failures, outage,
//! breaker).

use std::time::Duration;

use function_app::local::sandbox::erp::{ErpSandbox, ErpSandboxConfig, RunningErp};
use shared::erp::{
    ErpAuth, ErpClient, ErpConfig, ErpError, GoodsMovement, MovementKind, MovementLine,
    MovementLineList, SoapVersion, UsernameToken,
};
use shared::outbound::{BreakerState, OutboundError};

async fn start() -> RunningErp {
    ErpSandbox::start(ErpSandboxConfig::generated())
        .await
        .expect("the fake ERP starts")
}

fn client(erp: &RunningErp, version: SoapVersion, wsse: bool) -> ErpClient {
    client_as(erp, version, wsse, erp.credentials().clone())
}

fn client_as(
    erp: &RunningErp,
    version: SoapVersion,
    wsse: bool,
    token: UsernameToken,
) -> ErpClient {
    ErpClient::new(ErpConfig {
        endpoint: erp.endpoint(),
        version,
        auth: if wsse {
            ErpAuth::WsSecurity(token)
        } else {
            ErpAuth::Basic(token)
        },
        timeout: Duration::from_secs(5),
        breaker_open_for: None,
    })
    .expect("a client")
}

fn movement(reference: &str, kind: MovementKind, sku: &str, quantity: u32) -> GoodsMovement {
    GoodsMovement {
        document_reference: reference.into(),
        kind,
        lines: MovementLineList {
            lines: vec![MovementLine {
                sku: sku.into(),
                quantity,
            }],
        },
    }
}

async fn admin(erp: &RunningErp, path: &str, body: serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", erp.base_url()))
        .json(&body)
        .send()
        .await
        .expect("admin route answers");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

#[tokio::test]
async fn the_wsdl_is_served_at_query_wsdl() {
    let erp = start().await;
    let response = reqwest::get(format!("{}?wsdl", erp.endpoint()))
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("a body");
    assert!(
        text.contains(r#"<wsdl:definitions name="ErpInventoryService""#),
        "{text}"
    );
    assert!(text.contains("InventorySoap12"));
}

#[tokio::test]
async fn every_operation_works_in_both_versions_with_both_kinds_of_authentication() {
    for (version, wsse) in [
        (SoapVersion::V11, false),
        (SoapVersion::V11, true),
        (SoapVersion::V12, false),
        (SoapVersion::V12, true),
    ] {
        let erp = start().await;
        let client = client(&erp, version, wsse);
        let case = format!("SOAP {} wsse={wsse}", version.label());

        let mut token: Option<String> = None;
        let mut skus = Vec::new();
        loop {
            let page = client
                .get_stock_changes(token.as_deref(), 2)
                .await
                .expect(&case);
            assert!(page.items.items.len() <= 2, "{case}");
            skus.extend(page.items.items.iter().map(|item| item.sku.clone()));
            token = Some(page.next_token);
            if !page.has_more {
                break;
            }
        }
        assert_eq!(
            skus,
            ["KET-001", "MUG-002", "TEA-003", "LMP-004", "TST-005"],
            "{case}"
        );

        let products = client.get_products(None, 1, Some(10)).await.expect(&case);
        let kettle = &products.products.products[0];
        assert_eq!(
            (kettle.sku.as_str(), kettle.name.as_str()),
            ("KET-001", "Kettle")
        );
        assert_eq!(kettle.price.minor_units(), Some(2999));
        assert!(
            !products.products.products[4].active,
            "{case}: the toaster is discontinued"
        );

        let issue = movement("evt-ship-1", MovementKind::Issue, "KET-001", 2);
        let first = client.post_goods_movement(&issue).await.expect(&case);
        assert!(!first.duplicate, "{case}");
        let again = client.post_goods_movement(&issue).await.expect(&case);
        assert!(again.duplicate, "{case}");
        assert_eq!(again.document_number, first.document_number, "{case}");

        let after = client
            .get_stock_changes(token.as_deref(), 10)
            .await
            .expect(&case);
        let changes: Vec<(&str, i64)> = after
            .items
            .items
            .iter()
            .map(|item| (item.sku.as_str(), item.on_hand))
            .collect();
        assert_eq!(
            changes,
            [("KET-001", 8)],
            "{case}: posted once, resumed from the checkpoint"
        );
    }
}

#[tokio::test]
async fn faults_come_back_as_errors_with_the_erp_code_and_text() {
    let erp = start().await;
    for version in [SoapVersion::V11, SoapVersion::V12] {
        let client = client(&erp, version, false);
        let error = client
            .post_goods_movement(&movement("evt-x", MovementKind::Issue, "NOPE-9", 1))
            .await
            .expect_err("unknown SKU");
        let fault = error.fault().expect("a fault");
        assert_eq!(fault.erp_code.as_deref(), Some("UNKNOWN_SKU"));
        assert!(error.to_string().contains("unknown SKU NOPE-9"), "{error}");
        assert!(!error.is_transient());

        let error = client
            .get_stock_changes(Some("not-a-token"), 10)
            .await
            .expect_err("bad token");
        assert_eq!(
            error.fault().and_then(|f| f.erp_code.as_deref()),
            Some("INVALID_REQUEST")
        );

        let intruder = UsernameToken {
            username: erp.credentials().username.clone(),
            password: "wrong".into(),
        };
        for wsse in [false, true] {
            let error = client_as(&erp, version, wsse, intruder.clone())
                .get_products(None, 1, None)
                .await
                .expect_err("wrong password");
            assert_eq!(
                error.fault().and_then(|f| f.erp_code.as_deref()),
                Some("AUTHENTICATION_FAILED"),
                "{error}"
            );
        }
    }
    let client = client(&erp, SoapVersion::V11, true);
    client
        .post_goods_movement(&movement("evt-r", MovementKind::Return, "MUG-002", 1))
        .await
        .expect("a return");
    let error = client
        .post_goods_movement(&movement("evt-r", MovementKind::Return, "MUG-002", 5))
        .await
        .expect_err("same reference, other content");
    assert_eq!(
        error.fault().and_then(|f| f.erp_code.as_deref()),
        Some("DOCUMENT_REFERENCE_CONFLICT")
    );
}

#[tokio::test]
async fn a_stock_change_made_in_the_erp_shows_after_the_checkpoint() {
    let erp = start().await;
    let client = client(&erp, SoapVersion::V12, true);
    let caught_up = client
        .get_stock_changes(None, 100)
        .await
        .expect("first sync");
    admin(
        &erp,
        "/sandbox/stock",
        serde_json::json!({"sku": "TEA-003", "onHand": 42}),
    )
    .await;
    let page = client
        .get_stock_changes(Some(&caught_up.next_token), 100)
        .await
        .expect("next sync");
    assert_eq!(page.items.items.len(), 1);
    assert_eq!(
        (
            page.items.items[0].sku.as_str(),
            page.items.items[0].on_hand
        ),
        ("TEA-003", 42)
    );
}

#[tokio::test]
async fn failures_and_an_outage_open_the_breaker_and_nothing_is_sent_while_open() {
    let erp = start().await;
    let client = client(&erp, SoapVersion::V11, false);
    admin(&erp, "/sandbox/fail-next", serde_json::json!({"count": 1})).await;
    let error = client
        .get_products(None, 1, None)
        .await
        .expect_err("failed once");
    assert_eq!(
        error.fault().and_then(|f| f.erp_code.as_deref()),
        Some("INTERNAL_ERROR")
    );
    assert!(error.is_transient(), "{error}");
    client
        .get_products(None, 1, None)
        .await
        .expect("then it answers");

    admin(
        &erp,
        "/sandbox/outage",
        serde_json::json!({"mode": "unavailable"}),
    )
    .await;
    for _ in 0..2 {
        let error = client.get_stock_changes(None, 10).await.expect_err("down");
        assert!(error.is_transient(), "{error}");
    }
    assert_eq!(client.outbound().health().breaker, BreakerState::Open);
    let error = client
        .get_stock_changes(None, 10)
        .await
        .expect_err("breaker open");
    assert!(
        matches!(
            error,
            ErpError::Outbound {
                source: OutboundError::BreakerOpen { .. },
                ..
            }
        ),
        "{error}"
    );
}
