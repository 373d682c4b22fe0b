//! The names the ERP's messages are written with: the SOAP version ([`SoapVersion`]: its
//! envelope namespace and media type) and the ERP schema's namespace ([`NAMESPACE`]).

/// The target namespace of the ERP's schema.
pub const NAMESPACE: &str = "urn:erp:inventory:v1";

pub(super) const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub(super) const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

/// SOAP 1.1 or SOAP 1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapVersion {
    V11,
    V12,
}

impl SoapVersion {
    /// The envelope namespace.
    pub fn namespace(self) -> &'static str {
        match self {
            Self::V11 => SOAP11_NS,
            Self::V12 => SOAP12_NS,
        }
    }

    /// `1.1` or `1.2`.
    pub fn label(self) -> &'static str {
        match self {
            Self::V11 => "1.1",
            Self::V12 => "1.2",
        }
    }

    /// The `Content-Type` of a message (1.2 carries the action in it).
    pub fn content_type(self, action: &str) -> String {
        match self {
            Self::V11 => "text/xml; charset=utf-8".to_owned(),
            Self::V12 => format!("application/soap+xml; charset=utf-8; action=\"{action}\""),
        }
    }

    /// The version a `Content-Type` announces: `text/xml` is 1.1, `application/soap+xml` 1.2.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("text/xml") {
            Some(Self::V11)
        } else if media.eq_ignore_ascii_case("application/soap+xml") {
            Some(Self::V12)
        } else {
            None
        }
    }
}
