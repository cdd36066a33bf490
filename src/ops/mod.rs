//! The operations both faces call: where the options come from, rendering
//! to a target, the unit's convergence and removal (and its record of what
//! it wrote), the backends Watcher
//! would build, listing, power, credential checks and the doctor.

pub mod apply;
pub mod backend;
pub mod clock;
pub mod converge;
pub mod doctor;
pub mod error;
pub mod listing;
pub mod power;
pub mod record;
pub mod remove;
pub mod source;
pub mod unit;
pub mod validate;

pub use error::Error;
