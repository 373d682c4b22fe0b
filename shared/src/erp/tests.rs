//! The envelope codec: both versions round-trip every message, faults of both shapes read the
//! same, the WS-Security header is written as the profile says, and envelopes written by other
//! SOAP stacks (prefixes, whitespace) read.

use chrono::{TimeZone, Utc};

use super::*;
use crate::outbound::Secret;

fn token() -> UsernameToken {
    UsernameToken {
        username: "svc-handler".into(),
        password: Secret::new("pa<ss>&word"),
    }
}

fn messages() -> Vec<Payload> {
    let at = Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 30, 0)
        .single()
        .expect("a time");
    vec![
        Payload::GetStockChanges(GetStockChanges {
            since_token: Some("42".into()),
            page_size: 500,
        }),
        Payload::GetStockChangesResponse(StockChanges {
            items: StockItemList {
                items: vec![
                    StockItem {
                        sku: "KET-001".into(),
                        on_hand: 12,
                        changed_at: at,
                    },
                    StockItem {
                        sku: "MUG-002".into(),
                        on_hand: 0,
                        changed_at: at,
                    },
                ],
            },
            next_token: "44".into(),
            has_more: true,
        }),
        Payload::GetProducts(GetProducts {
            changed_since: Some(at),
            page: 2,
            page_size: None,
        }),
        Payload::GetProductsResponse(ProductPage {
            products: ProductList {
                products: vec![ErpProduct {
                    sku: "KET-001".into(),
                    name: "Kettle & Co <1.7 l>".into(),
                    category: "kitchen".into(),
                    price: Price::from_minor_units(2999, "EUR"),
                    active: true,
                }],
            },
            has_more: false,
        }),
        Payload::PostGoodsMovement(GoodsMovement {
            document_reference: "evt-1".into(),
            kind: MovementKind::Return,
            lines: MovementLineList {
                lines: vec![MovementLine {
                    sku: "KET-001".into(),
                    quantity: 2,
                }],
            },
        }),
        Payload::PostGoodsMovementResponse(GoodsMovementPosted {
            document_number: "4900000001".into(),
            duplicate: false,
        }),
    ]
}

#[test]
fn every_message_round_trips_in_both_versions() {
    for version in [SoapVersion::V11, SoapVersion::V12] {
        for message in messages() {
            let xml = encode(version, None, &message).expect("encodes");
            assert!(xml.contains(version.namespace()), "{xml}");
            let read = decode(&xml).expect("decodes");
            assert_eq!(read.version, version);
            assert_eq!(read.payload, message, "{xml}");
            assert_eq!(read.token, None);
        }
    }
}

#[test]
fn the_body_puts_payload_elements_in_the_erp_namespace() {
    let xml = encode(SoapVersion::V11, None, &messages()[0]).expect("encodes");
    assert!(
        xml.contains(&format!(
            r#"<soap:Body xmlns="{NAMESPACE}"><GetStockChanges>"#
        )),
        "{xml}"
    );
    assert!(
        xml.contains("<sinceToken>42</sinceToken><pageSize>500</pageSize>"),
        "{xml}"
    );
}

#[test]
fn faults_of_both_versions_are_written_in_their_shape_and_read_the_same() {
    let fault = SoapFault::new(FaultSide::Caller, "UNKNOWN_SKU", "unknown SKU NOPE-1");
    let v11 = encode(
        SoapVersion::V11,
        None,
        &Payload::Fault(fault.to_xml(SoapVersion::V11)),
    )
    .expect("encodes");
    assert!(v11.contains("<faultcode>soap:Client</faultcode>"), "{v11}");
    assert!(
        v11.contains("<faultstring>unknown SKU NOPE-1</faultstring>"),
        "{v11}"
    );
    let v12 = encode(
        SoapVersion::V12,
        None,
        &Payload::Fault(fault.to_xml(SoapVersion::V12)),
    )
    .expect("encodes");
    assert!(
        v12.contains("<soap:Code><soap:Value>soap:Sender</soap:Value></soap:Code>"),
        "{v12}"
    );
    assert!(
        v12.contains(r#"<soap:Text xml:lang="en">unknown SKU NOPE-1</soap:Text>"#),
        "{v12}"
    );
    for xml in [v11, v12] {
        let Payload::Fault(read) = decode(&xml).expect("decodes").payload else {
            panic!("not a fault: {xml}");
        };
        let read = SoapFault::from(read);
        assert_eq!(read.reason, "unknown SKU NOPE-1");
        assert_eq!(read.erp_code.as_deref(), Some("UNKNOWN_SKU"));
        assert!(read.is_caller_fault(), "{read:?}");
    }
}

#[test]
fn faults_written_by_other_stacks_are_read() {
    let v11 = r#"<?xml version='1.0' encoding='UTF-8'?>
<soap11env:Envelope xmlns:soap11env="http://schemas.xmlsoap.org/soap/envelope/">
  <soap11env:Body>
    <soap11env:Fault>
      <faultcode>soap11env:Server</faultcode>
      <faultstring>ERP database offline</faultstring>
      <faultactor></faultactor>
    </soap11env:Fault>
  </soap11env:Body>
</soap11env:Envelope>"#;
    let v12 = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope">
  <env:Body><env:Fault>
    <env:Code><env:Value>env:Receiver</env:Value><env:Subcode><env:Value>x:Busy</env:Value></env:Subcode></env:Code>
    <env:Reason><env:Text xml:lang="en-US">try later</env:Text></env:Reason>
  </env:Fault></env:Body></env:Envelope>"#;
    for (xml, reason) in [(v11, "ERP database offline"), (v12, "try later")] {
        let Payload::Fault(read) = decode(xml).expect("decodes").payload else {
            panic!("not a fault");
        };
        let read = SoapFault::from(read);
        assert_eq!(read.reason, reason);
        assert!(!read.is_caller_fault(), "{read:?}");
        assert_eq!(read.erp_code, None);
    }
}

#[test]
fn a_prefixed_response_with_whitespace_reads() {
    let xml = r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tns="urn:erp:inventory:v1">
  <s:Header/>
  <s:Body>
    <tns:PostGoodsMovementResponse>
      <tns:documentNumber>4900000007</tns:documentNumber>
      <tns:duplicate>1</tns:duplicate>
    </tns:PostGoodsMovementResponse>
  </s:Body>
</s:Envelope>"#;
    let read = decode(xml).expect("decodes");
    assert_eq!(read.version, SoapVersion::V12);
    assert_eq!(
        read.payload,
        Payload::PostGoodsMovementResponse(GoodsMovementPosted {
            document_number: "4900000007".into(),
            duplicate: true,
        })
    );
}

#[test]
fn the_ws_security_header_carries_a_password_text_token_and_reads_back() {
    for (version, must_understand) in [(SoapVersion::V11, "1"), (SoapVersion::V12, "true")] {
        let xml = encode(version, Some(&token()), &messages()[0]).expect("encodes");
        assert!(xml.contains(r#"<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd""#), "{xml}");
        assert!(
            xml.contains(&format!(r#"soap:mustUnderstand="{must_understand}""#)),
            "{xml}"
        );
        assert!(
            xml.contains("<wsse:Username>svc-handler</wsse:Username>"),
            "{xml}"
        );
        assert!(
            xml.contains("#PasswordText\">pa&lt;ss&gt;&amp;word</wsse:Password>"),
            "{xml}"
        );
        let read = decode(&xml).expect("decodes");
        assert_eq!(read.token, Some(token()));
    }
}

#[test]
fn what_is_not_a_soap_envelope_is_refused_with_the_reason() {
    let cases = [
        (
            "<html><body>502 Bad Gateway</body></html>",
            "not a SOAP envelope",
        ),
        (
            r#"<e:Envelope xmlns:e="urn:other"><e:Body/></e:Envelope>"#,
            "neither SOAP 1.1",
        ),
        ("<soap:Envelope", "not well-formed"),
        (
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><Other/></s:Body></s:Envelope>"#,
            "does not hold",
        ),
    ];
    for (xml, expected) in cases {
        let error = decode(xml).expect_err(xml).to_string();
        assert!(error.contains(expected), "{xml}: {error}");
    }
}

#[test]
fn content_types_tell_the_version_and_carry_the_action() {
    assert_eq!(
        SoapVersion::V11.content_type("a"),
        "text/xml; charset=utf-8"
    );
    assert_eq!(
        SoapVersion::V12.content_type("urn:erp:inventory:v1/GetProducts"),
        r#"application/soap+xml; charset=utf-8; action="urn:erp:inventory:v1/GetProducts""#
    );
    assert_eq!(
        SoapVersion::from_content_type("text/xml; charset=utf-8"),
        Some(SoapVersion::V11)
    );
    assert_eq!(
        SoapVersion::from_content_type("application/soap+xml;action=x"),
        Some(SoapVersion::V12)
    );
    assert_eq!(SoapVersion::from_content_type("application/json"), None);
}
