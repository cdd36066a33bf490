//! The Keystone v3 that the Ironic and Nova simulators serve under
//! `/identity`: token issuing and checking, the service catalog, and its
//! answers on the wire.

mod catalog;
mod error;
mod tokens;
mod wire;

pub(crate) use catalog::{identity as catalog_identity, service};
pub(crate) use tokens::{project_id, user_id, Keystone};
pub(crate) use wire::{
    bad_token, clients_auth_section, method_not_allowed, not_found, token_response, v3_doc, www_authenticate,
};
