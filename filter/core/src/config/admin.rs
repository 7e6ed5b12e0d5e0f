//! `[admin]` compiled: Envoy's admin interface. Its address and port need no check beyond their
//! TOML types (the admin endpoints' keys are `[[admin_keys]]`, checked in [`super::keys`]).

use super::raw::RawAdmin;
use super::Admin;

/// The plan's admin interface; `[admin]` has nothing to refuse.
pub(super) fn compile_admin(raw: &RawAdmin) -> Admin {
    Admin {
        address: raw.address.clone(),
        port: raw.port,
    }
}
