//! The ERP client against an independent SOAP stack: a spyne (Python) server of the same
//! contract (scripts/lib/soap_interop_server.py), started by `scripts/soap-interop`, which sets
//! `ERP_INTEROP_URL` and runs these tests. Every operation round-trips in SOAP 1.1 and 1.2, with
//! HTTP Basic and with a WS-Security UsernameToken, spyne's faults read as faults, and a wrong
//! password is refused both ways.
//!
//! Ignored in a plain `cargo test` (they need the server): `scripts/soap-interop` runs them,
//! and `scripts/test` runs that script as one of its steps.

use std::time::Duration;

use shared::erp::{
    ErpAuth, ErpClient, ErpConfig, ErpError, GoodsMovement, MovementKind, MovementLine,
    MovementLineList, SoapVersion, UsernameToken,
};

fn server() -> String {
    std::env::var("ERP_INTEROP_URL")
        .expect("ERP_INTEROP_URL: run these through scripts/soap-interop")
}

fn client(version: SoapVersion, wsse: bool) -> ErpClient {
    client_with(version, wsse, "interop-pw")
}

fn client_with(version: SoapVersion, wsse: bool, password: &str) -> ErpClient {
    let path = match version {
        SoapVersion::V11 => "soap11",
        SoapVersion::V12 => "soap12",
    };
    let token = UsernameToken {
        username: "interop".into(),
        password: password.into(),
    };
    ErpClient::new(ErpConfig {
        endpoint: format!("{}/{path}", server()),
        version,
        auth: if wsse {
            ErpAuth::WsSecurity(token)
        } else {
            ErpAuth::Basic(token)
        },
        timeout: Duration::from_secs(10),
        breaker_open_for: None,
    })
    .expect("a client")
}

fn movement(reference: &str, sku: &str) -> GoodsMovement {
    GoodsMovement {
        document_reference: reference.into(),
        kind: MovementKind::Issue,
        lines: MovementLineList {
            lines: vec![MovementLine {
                sku: sku.into(),
                quantity: 1,
            }],
        },
    }
}

const CASES: [(SoapVersion, bool); 4] = [
    (SoapVersion::V11, false),
    (SoapVersion::V11, true),
    (SoapVersion::V12, false),
    (SoapVersion::V12, true),
];

#[tokio::test]
#[ignore = "needs the spyne server: scripts/soap-interop"]
async fn stock_changes_page_through_spyne() {
    for (version, wsse) in CASES {
        let case = format!("SOAP {} wsse={wsse}", version.label());
        let client = client(version, wsse);
        let first = client.get_stock_changes(None, 2).await.expect(&case);
        let items: Vec<(&str, i64)> = first
            .items
            .items
            .iter()
            .map(|item| (item.sku.as_str(), item.on_hand))
            .collect();
        assert_eq!(items, [("KET-001", 10), ("MUG-002", 120)], "{case}");
        assert!(first.has_more, "{case}");
        assert_eq!(
            first.items.items[0].changed_at.to_rfc3339(),
            "2026-03-01T12:30:00+00:00"
        );
        let rest = client
            .get_stock_changes(Some(&first.next_token), 2)
            .await
            .expect(&case);
        assert_eq!(rest.items.items.len(), 1, "{case}");
        assert_eq!(rest.items.items[0].sku, "TST-005", "{case}");
        assert!(!rest.has_more, "{case}");
    }
}

#[tokio::test]
#[ignore = "needs the spyne server: scripts/soap-interop"]
async fn products_come_from_spyne_with_prices_and_flags() {
    for (version, wsse) in CASES {
        let case = format!("SOAP {} wsse={wsse}", version.label());
        let page = client(version, wsse)
            .get_products(Some(chrono::Utc::now()), 1, Some(50))
            .await
            .expect(&case);
        let products = &page.products.products;
        assert_eq!(products.len(), 3, "{case}");
        assert_eq!(products[0].name, "Kettle", "{case}");
        assert_eq!(products[0].price.minor_units(), Some(2999), "{case}");
        assert_eq!(products[1].price.minor_units(), Some(750), "{case}");
        assert_eq!(products[0].price.currency, "EUR", "{case}");
        assert!(!products[2].active, "{case}");
    }
}

#[tokio::test]
#[ignore = "needs the spyne server: scripts/soap-interop"]
async fn goods_movements_post_once_per_reference_and_faults_read() {
    for (n, (version, wsse)) in CASES.into_iter().enumerate() {
        let case = format!("SOAP {} wsse={wsse}", version.label());
        let client = client(version, wsse);
        let reference = format!("evt-interop-{n}");
        let first = client
            .post_goods_movement(&movement(&reference, "KET-001"))
            .await
            .expect(&case);
        assert!(!first.duplicate, "{case}");
        let again = client
            .post_goods_movement(&movement(&reference, "KET-001"))
            .await
            .expect(&case);
        assert!(again.duplicate, "{case}");
        assert_eq!(again.document_number, first.document_number, "{case}");

        let error = client
            .post_goods_movement(&movement("evt-bad", "NOPE-9"))
            .await
            .expect_err("unknown SKU");
        let fault = error
            .fault()
            .unwrap_or_else(|| panic!("{case}: not a fault: {error}"));
        assert!(fault.is_caller_fault(), "{case}: {fault:?}");
        assert!(
            error.to_string().contains("unknown SKU NOPE-9"),
            "{case}: {error}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the spyne server: scripts/soap-interop"]
async fn a_wrong_password_is_refused_in_both_ways_of_sending_it() {
    for (version, wsse) in CASES {
        let case = format!("SOAP {} wsse={wsse}", version.label());
        let error = client_with(version, wsse, "wrong")
            .get_products(None, 1, None)
            .await
            .expect_err("refused");
        match &error {
            ErpError::Outbound { source, .. } => {
                assert_eq!(
                    source.status().map(|s| s.as_u16()),
                    Some(401),
                    "{case}: {error}"
                )
            }
            other => panic!("{case}: not a refusal: {other}"),
        }
        assert!(!error.is_transient(), "{case}");
    }
}
