//! The charm: Juju's events routed to the operations, whose results go
//! back through the [`HookTools`] trait. Every hook converges the unit
//! ([`crate::ops::converge`]), its MAAS checks within the hooks' time;
//! `remove` takes out what the charm wrote ([`crate::ops::remove`]);
//! `stop` and relation-broken (teardown) do nothing, MAAS included; the
//! actions run the operations both faces share, MAAS within
//! `maas-timeout`. Bad configuration is `blocked` and a clean exit; only
//! real faults (a hook tool or systemd failing, a write failing) make the
//! hook fail, so Juju retries it.
//!
//! [`HookTools`]: crate::host::juju::HookTools

mod actions;
mod hooks;
mod status;

use crate::host::juju::LogLevel;
pub use crate::ops::converge::Unit;
use crate::ops::doctor::Depth;
use crate::ops::Error;

use actions::ActionFailure;

/// What `JUJU_DISPATCH_PATH` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A hook, by name (`config-changed`).
    Hook(String),
    /// An action, by name (`validate-credentials`).
    Action(String),
}

impl Event {
    /// `hooks/config-changed` or `actions/validate-credentials`.
    pub fn from_dispatch_path(path: &str) -> Option<Event> {
        let (kind, name) = path.trim_start_matches("./").split_once('/')?;
        if name.is_empty() || name.contains('/') {
            return None;
        }
        match kind {
            "hooks" => Some(Event::Hook(name.to_owned())),
            "actions" => Some(Event::Action(name.to_owned())),
            _ => None,
        }
    }
}

/// Where the charm installs `maas-ca-cert` so that Watcher (python-libmaas
/// uses the system's CA bundle) trusts MAAS too.
pub use crate::ops::unit::DEFAULT_CA_DIR;

/// Every action's `result`, on success: the action did what it was asked
/// (its other keys say what it found; a `doctor` run whose checks all pass
/// or only warn).
const SUCCESS: &str = "success";
/// Every action's `result`, on failure, with `action-fail`'s message (the
/// diagnosis and its hint); the keys set before it stay.
const FAILURE: &str = "failure";

fn result(value: &str) -> (String, String) {
    ("result".to_owned(), value.to_owned())
}

/// Runs one event. `Err` means a real fault: the caller exits non-zero.
pub fn run(unit: &Unit<'_>, event: &Event) -> Result<(), Error> {
    match event {
        Event::Hook(name) => match name.as_str() {
            // Teardown: the principal is going away (relation-broken) and
            // `remove` follows; nothing to converge, and no MAAS to wait for.
            "stop" => Ok(()),
            broken if broken.ends_with("-relation-broken") => Ok(()),
            "remove" => hooks::remove(unit),
            "update-status" => hooks::converge(unit, Depth::Cheap),
            // secret-changed included: every hook reads the key with --refresh.
            _ => hooks::converge(unit, Depth::Hook),
        },
        Event::Action(name) => {
            let outcome = match name.as_str() {
                "validate-credentials" => actions::validate(unit),
                "list-nodes" => actions::list_nodes(unit),
                "power-status" => actions::power_status(unit),
                "doctor" => actions::doctor(unit),
                other => Err(ActionFailure(format!("unknown action `{other}`"))),
            };
            match outcome {
                Ok(()) => unit.tools.action_set(&[result(SUCCESS)])?,
                Err(ActionFailure(message)) => {
                    unit.tools.log(LogLevel::Warning, &message)?;
                    unit.tools.action_set(&[result(FAILURE)])?;
                    unit.tools.action_fail(&message)?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_paths() {
        assert_eq!(Event::from_dispatch_path("hooks/config-changed"), Some(Event::Hook("config-changed".into())));
        assert_eq!(Event::from_dispatch_path("./actions/list-nodes"), Some(Event::Action("list-nodes".into())));
        assert_eq!(Event::from_dispatch_path("dispatch"), None);
        assert_eq!(Event::from_dispatch_path("hooks/"), None);
        assert_eq!(Event::from_dispatch_path("other/x"), None);
    }
}
