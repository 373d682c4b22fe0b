//! `GDPRDataAnonymization`: erases a customer across all data, on messages from the
//! `gdpr-requests` queue ([`ErasureRequest`]).
//!
//! Not implemented yet: erasure lands with issue 4. Until then a malformed message fails as bad
//! input and a valid one fails as not implemented, so it is redelivered, dead-lettered after
//! `maxDeliveryCount`, and can be replayed once erasure lands. Nothing is lost.

use shared::domain::messages::ErasureRequest;
use shared::protocol::InvocationRequest;

use crate::app::AppState;
use crate::invoke::InvokeFuture;

pub fn invoke(_state: AppState, request: InvocationRequest) -> InvokeFuture {
    Box::pin(async move { super::pending::message::<ErasureRequest>(&request, "GDPRDataAnonymization", 4) })
}
