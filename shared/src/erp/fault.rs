//! SOAP faults: [`FaultXml`] is the `Fault` element of either version as it travels (SOAP 1.1
//! `faultcode`/`faultstring`/`detail`, SOAP 1.2 `Code/Value`, `Reason/Text`, `Detail`);
//! [`SoapFault`] is what it says, the same for both.

use serde::{Deserialize, Serialize, Serializer};

use super::protocol::{SoapVersion, NAMESPACE};

/// What a fault says: its code (`soap:Client`, `env:Sender`...), the ERP's error code from the
/// `ErpFault` detail when there is one, and the human-readable text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapFault {
    pub code: String,
    pub erp_code: Option<String>,
    pub reason: String,
}

/// Who is at fault, in the words of both versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultSide {
    /// The request was wrong: 1.1 `Client`, 1.2 `Sender`.
    Caller,
    /// The service failed: 1.1 `Server`, 1.2 `Receiver`.
    Service,
}

impl SoapFault {
    /// A fault to answer with (the fake ERP, tests): the code is written with the envelope's
    /// `soap` prefix.
    pub fn new(side: FaultSide, erp_code: &str, reason: impl Into<String>) -> Self {
        Self {
            code: side.name().to_owned(),
            erp_code: Some(erp_code.to_owned()),
            reason: reason.into(),
        }
    }

    /// Whether the caller's request was at fault (`Client`/`Sender`), by the code's local name.
    pub fn is_caller_fault(&self) -> bool {
        let local = self.code.rsplit(':').next().unwrap_or_default();
        matches!(local, "Client" | "Sender") || local.starts_with("Client.")
    }

    /// The `Fault` element in `version`'s shape.
    pub fn to_xml(&self, version: SoapVersion) -> FaultXml {
        let local = self.code.rsplit(':').next().unwrap_or_default();
        let side = if self.is_caller_fault() {
            FaultSide::Caller
        } else {
            FaultSide::Service
        };
        let detail = self
            .erp_code
            .clone()
            .map(|code| ErpFaultDetail { ns: (), code });
        match version {
            SoapVersion::V11 => FaultXml {
                fault_code: Some(format!("soap:{}", side.v11(local))),
                fault_string: Some(self.reason.clone()),
                detail: detail.map(|erp_fault| Detail {
                    erp_fault: Some(erp_fault),
                }),
                ..FaultXml::default()
            },
            SoapVersion::V12 => FaultXml {
                code: Some(Code12 {
                    value: format!("soap:{}", side.v12()),
                }),
                reason: Some(Reason12 {
                    text: vec![Text12 {
                        lang: (),
                        value: self.reason.clone(),
                    }],
                }),
                detail12: detail.map(|erp_fault| Detail {
                    erp_fault: Some(erp_fault),
                }),
                ..FaultXml::default()
            },
        }
    }
}

impl FaultSide {
    fn name(self) -> &'static str {
        match self {
            Self::Caller => "Client",
            Self::Service => "Server",
        }
    }

    /// The 1.1 code, keeping a given `Client.xyz`-style refinement.
    fn v11(self, local: &str) -> String {
        let base = self.name();
        match local.split_once('.') {
            Some((head, rest)) if head == base => format!("{base}.{rest}"),
            _ => base.to_owned(),
        }
    }

    fn v12(self) -> &'static str {
        match self {
            Self::Caller => "Sender",
            Self::Service => "Receiver",
        }
    }
}

impl From<FaultXml> for SoapFault {
    fn from(xml: FaultXml) -> Self {
        let code = xml
            .fault_code
            .or(xml.code.map(|code| code.value))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let reason = xml
            .fault_string
            .or_else(|| {
                xml.reason
                    .and_then(|reason| reason.text.into_iter().next().map(|text| text.value))
            })
            .unwrap_or_default()
            .trim()
            .to_owned();
        let erp_code = xml
            .detail
            .or(xml.detail12)
            .and_then(|detail| detail.erp_fault)
            .map(|fault| fault.code.trim().to_owned());
        Self {
            code,
            erp_code,
            reason,
        }
    }
}

/// The `Fault` element of either version. Read by local name; written with the `soap` prefix
/// the envelope binds (1.1's own children are unqualified, 1.2's are in the envelope namespace).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultXml {
    #[serde(rename = "faultcode", default, skip_serializing_if = "Option::is_none")]
    fault_code: Option<String>,
    #[serde(
        rename = "faultstring",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    fault_string: Option<String>,
    #[serde(
        rename(serialize = "soap:Code", deserialize = "Code"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    code: Option<Code12>,
    #[serde(
        rename(serialize = "soap:Reason", deserialize = "Reason"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    reason: Option<Reason12>,
    #[serde(rename = "detail", default, skip_serializing_if = "Option::is_none")]
    detail: Option<Detail>,
    #[serde(
        rename(serialize = "soap:Detail", deserialize = "Detail"),
        default,
        skip_serializing_if = "Option::is_none"
    )]
    detail12: Option<Detail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Code12 {
    #[serde(rename(serialize = "soap:Value", deserialize = "Value"))]
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Reason12 {
    #[serde(rename(serialize = "soap:Text", deserialize = "Text"), default)]
    text: Vec<Text12>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Text12 {
    #[serde(rename = "@xml:lang", serialize_with = "english", skip_deserializing)]
    lang: (),
    #[serde(rename = "$text", default)]
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Detail {
    #[serde(rename = "ErpFault", default, skip_serializing_if = "Option::is_none")]
    erp_fault: Option<ErpFaultDetail>,
}

/// `<ErpFault xmlns="urn:erp:inventory:v1"><code>...</code></ErpFault>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ErpFaultDetail {
    #[serde(
        rename = "@xmlns",
        serialize_with = "erp_namespace",
        skip_deserializing
    )]
    ns: (),
    code: String,
}

fn english<S: Serializer>(_: &(), serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str("en")
}

fn erp_namespace<S: Serializer>(_: &(), serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(NAMESPACE)
}
