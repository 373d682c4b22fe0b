//! Sandboxes of the external systems the app calls, served by `handler local` on loopback
//! ports so that the whole app runs with no internet. Each one speaks its system's documented
//! contract (paths, fields, status codes, error bodies, webhooks) for the subset the app's
//! adapter uses, plus a few `/sandbox/...` admin routes for tests and drills.

pub mod paypal;
