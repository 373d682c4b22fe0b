//! SOAP envelopes, both versions, written and read with `quick-xml`'s serde support:
//! [`encode`] a [`Payload`] (and a WS-Security header) into an envelope, [`decode`] one back.
//!
//! The envelope binds the `soap` prefix to its version's namespace and declares the ERP
//! namespace as the default one on `Body` (not for a fault: SOAP 1.1's fault children are
//! unqualified). Reading goes by local names, so any prefixes read the same; the envelope's
//! namespace alone (resolved with `quick-xml`'s namespace reader) tells the version.

use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;
use serde::{Deserialize, Serialize};

use super::messages::Payload;
use super::protocol::{SoapVersion, NAMESPACE, SOAP11_NS, SOAP12_NS};
use super::security::{SecurityIn, SecurityOut, UsernameToken};

/// Why an envelope could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("cannot write the envelope: {0}")]
    Encode(#[from] quick_xml::SeError),
    #[error("not well-formed XML: {0}")]
    Xml(String),
    #[error("the document is not a SOAP envelope (root element {0:?})")]
    NotEnvelope(String),
    #[error("the envelope's namespace {0:?} is neither SOAP 1.1's nor SOAP 1.2's")]
    UnknownNamespace(String),
    #[error("the envelope does not hold what was expected: {0}")]
    Content(#[from] quick_xml::DeError),
}

/// A read envelope: its version, the WS-Security UsernameToken if it carried one, its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub version: SoapVersion,
    pub token: Option<UsernameToken>,
    pub payload: Payload,
}

#[derive(Serialize)]
#[serde(rename = "soap:Envelope")]
struct EnvelopeOut<'a> {
    #[serde(rename = "@xmlns:soap")]
    soap: &'static str,
    #[serde(rename = "soap:Header", skip_serializing_if = "Option::is_none")]
    header: Option<HeaderOut<'a>>,
    #[serde(rename = "soap:Body")]
    body: BodyOut<'a>,
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    #[serde(rename = "wsse:Security")]
    security: SecurityOut<'a>,
}

#[derive(Serialize)]
struct BodyOut<'a> {
    #[serde(rename = "@xmlns", skip_serializing_if = "Option::is_none")]
    xmlns: Option<&'static str>,
    #[serde(rename = "$value")]
    content: &'a Payload,
}

#[derive(Deserialize)]
struct EnvelopeIn {
    #[serde(rename = "Header", default)]
    header: Option<HeaderIn>,
    #[serde(rename = "Body")]
    body: BodyIn,
}

#[derive(Deserialize)]
struct HeaderIn {
    #[serde(rename = "Security", default)]
    security: Option<SecurityIn>,
}

#[derive(Deserialize)]
struct BodyIn {
    #[serde(rename = "$value")]
    content: Payload,
}

/// The envelope of `payload` in `version`, with a WS-Security header when `token` is given.
pub fn encode(
    version: SoapVersion,
    token: Option<&UsernameToken>,
    payload: &Payload,
) -> Result<String, EnvelopeError> {
    let envelope = EnvelopeOut {
        soap: version.namespace(),
        header: token.map(|token| HeaderOut {
            security: SecurityOut::new(version, token),
        }),
        body: BodyOut {
            xmlns: (!matches!(payload, Payload::Fault(_))).then_some(NAMESPACE),
            content: payload,
        },
    };
    Ok(quick_xml::se::to_string(&envelope)?)
}

/// Reads an envelope of either version.
pub fn decode(xml: &str) -> Result<Incoming, EnvelopeError> {
    let version = version_of(xml)?;
    let envelope: EnvelopeIn = quick_xml::de::from_str(xml)?;
    let token = envelope
        .header
        .and_then(|header| header.security)
        .map(UsernameToken::from);
    Ok(Incoming {
        version,
        token,
        payload: envelope.body.content,
    })
}

/// The version, from the root element's namespace.
fn version_of(xml: &str) -> Result<SoapVersion, EnvelopeError> {
    let mut reader = NsReader::from_str(xml);
    loop {
        let (namespace, event) = reader
            .read_resolved_event()
            .map_err(|e| EnvelopeError::Xml(e.to_string()))?;
        let start = match event {
            Event::Start(start) | Event::Empty(start) => start,
            Event::Eof => return Err(EnvelopeError::NotEnvelope(String::new())),
            _ => continue,
        };
        let local = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
        if local != "Envelope" {
            return Err(EnvelopeError::NotEnvelope(local));
        }
        return match namespace {
            ResolveResult::Bound(Namespace(ns)) if ns == SOAP11_NS.as_bytes() => {
                Ok(SoapVersion::V11)
            }
            ResolveResult::Bound(Namespace(ns)) if ns == SOAP12_NS.as_bytes() => {
                Ok(SoapVersion::V12)
            }
            ResolveResult::Bound(Namespace(ns)) => Err(EnvelopeError::UnknownNamespace(
                String::from_utf8_lossy(ns).into_owned(),
            )),
            _ => Err(EnvelopeError::UnknownNamespace(String::new())),
        };
    }
}
