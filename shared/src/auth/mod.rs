//! Identity and tenancy: who is calling, and for which tenant.
//!
//! Requests carry an Entra bearer token (RS256 JWT). [`Authenticator::authenticate`] checks it
//! against the configured issuers and answers a [`Principal`]: an employee with app roles
//! (Entra ID), a client bound to one customer (Entra External ID) or a service of the platform
//! with an app-only token and app roles (Entra ID client credentials), always with the tenant
//! taken from a token claim, never from the request. Keys come from each issuer's JWKS, cached
//! and refetched (rate-limited) on an unknown `kid`. In local mode, [`DevIssuer`] signs tokens
//! with a key kept in the data folder, and the authenticator can be told to trust it.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use shared::auth::{AuthConfig, Authenticator, IssuerConfig, Role};
//!
//! let config = AuthConfig::default()
//!     .with_issuer(IssuerConfig::employee(
//!         "https://login.microsoftonline.com/{tenant-guid}/v2.0",
//!         "api://platform",
//!     ))
//!     .with_issuer(IssuerConfig::client(
//!         "https://{tenant-guid}.ciamlogin.com/{tenant-guid}/v2.0",
//!         "api://platform",
//!     ));
//! let authenticator = Authenticator::new(config)?;
//! match authenticator.authenticate(Some("Bearer eyJ...")).await {
//!     Ok(principal) if principal.has_role(Role::Admin) => { /* ... */ }
//!     Ok(_) => { /* 403 where a role is needed */ }
//!     Err(error) => { /* error.status(): 401, or 503 when error.is_server_side() */ }
//! }
//! # Ok(())
//! # }
//! ```

mod authenticator;
mod cache;
mod claims;
mod config;
mod dev;
mod error;
mod jwks;
mod principal;
mod token;

pub use authenticator::Authenticator;
pub use config::{
    AuthConfig, IssuerConfig, IssuerKind, DEFAULT_CUSTOMER_CLAIM, DEFAULT_FETCH_TIMEOUT,
    DEFAULT_KEY_MAX_AGE, DEFAULT_LEEWAY, DEFAULT_REFETCH_INTERVAL, DEFAULT_TENANT_CLAIM,
    DEFAULT_VERIFIED_TOKEN_CACHE, ROLES_CLAIM,
};
pub use dev::{
    DevIssuer, DevSubject, DevTrust, DEV_AUDIENCE, DEV_EMPLOYEE_SUBJECT, DEV_ISSUER, DEV_KEY_FILE,
};
pub use error::{AuthConfigError, AuthError, DevKeyError};
pub use principal::{AppRole, Principal, PrincipalKind, Role, UnknownRole};
pub use token::{bearer_token, MAX_TOKEN_LEN};
