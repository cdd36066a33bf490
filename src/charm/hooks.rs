//! The hooks: each calls its operation and maps what it says onto hook
//! tools (`juju-log`, `status-set`, `application-version-set`).

use crate::host::juju::HookTools;
use crate::ops::converge::{self, Note, Unit};
use crate::ops::doctor::Depth;
use crate::ops::remove;
use crate::ops::Error;

use super::status;

/// What a hook tells, through the hook tools, as it comes.
fn teller(tools: &dyn HookTools) -> impl FnMut(Note) -> Result<(), Error> + '_ {
    move |note| status::tell(tools, note)
}

/// Converges the unit and sets the status it converged to.
pub(super) fn converge(unit: &Unit<'_>, depth: Depth) -> Result<(), Error> {
    let done = converge::converge(unit, depth, &mut teller(unit.tools))?;
    status::set(unit.tools, done.target.status, &done.target.message)
}

/// The `remove` hook.
pub(super) fn remove(unit: &Unit<'_>) -> Result<(), Error> {
    remove::remove(unit, &mut teller(unit.tools)).map(drop)
}
