//! Powering one node on or off, with the policy both faces share: a node
//! already in the target state is left alone, a node not in use is powered
//! off only when forced (Watcher powers off deployed hosts only), a change
//! in flight is waited for or refused, and MAAS's "not allocated" refusal
//! is said plainly.

use std::fmt;
use std::time::{Duration, Instant};

use crate::clients::maas::MaasError;
use crate::metal::{self, MetalClient, MetalError, Node, PowerReading, PowerState};
use crate::ops::survey;

/// What to do.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// The state wanted; `None` only reads the power.
    pub target: Option<PowerState>,
    /// Wait until the node reaches the state (and for a change in flight).
    pub wait: bool,
    /// Power off a node that is not in use.
    pub force: bool,
    /// How long `wait` waits.
    pub timeout: Duration,
}

/// What was done, for the report.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The node found for the id or name given.
    pub node: Node,
    /// The power now, or the state requested when not waiting.
    pub reading: PowerReading,
    /// `already` (nothing to do) or `requested` (not waited for).
    pub note: Option<&'static str>,
}

/// Why the node was not powered as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowerError {
    /// Finding the node, reading its power or asking for the change failed.
    Metal(MetalError),
    /// The service is changing the node's power to the other state.
    Changing {
        /// The node, as `hostname (id)` or its id alone.
        label: String,
        /// The state the service is moving it to.
        to: PowerState,
    },
    /// Power-off of a node that is not in use, without `force`.
    OffRefused {
        /// The node, as `hostname (id)` or its id alone.
        label: String,
        /// Its provision state, quoted (or `in an unknown state`).
        state: String,
    },
    /// MAAS powers on only machines that are allocated or deployed.
    NotAllocated {
        /// The node, as `hostname (id)` or its id alone.
        label: String,
        /// Its provision state, quoted (or `in an unknown state`).
        state: String,
    },
    /// `wait`: the state was not reached in time.
    WaitTimedOut {
        /// The node, as `hostname (id)` or its id alone.
        label: String,
        /// The last power read: `on`, or `on, changing to off`.
        reading: String,
        /// How long was waited ([`Request::timeout`]).
        timeout: Duration,
    },
}

impl From<MetalError> for PowerError {
    fn from(e: MetalError) -> Self {
        PowerError::Metal(e)
    }
}

impl fmt::Display for PowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PowerError::Metal(e) => e.fmt(f),
            PowerError::Changing { label, to } => write!(f, "{label} is changing its power to {to} now"),
            PowerError::OffRefused { label, state } => {
                write!(f, "refusing to power off {label}: it is {state}, not in use")
            }
            PowerError::NotAllocated { label, state } => write!(
                f,
                "MAAS will not power on {label}: it is {state}, and MAAS powers on only machines that are allocated or deployed"
            ),
            PowerError::WaitTimedOut { label, reading, timeout } => {
                write!(f, "{label} is still {reading} after {} s", timeout.as_secs())
            }
        }
    }
}

impl std::error::Error for PowerError {}

impl PowerError {
    /// What to do about it.
    pub(crate) fn hint(&self) -> String {
        match self {
            PowerError::Metal(e) => e.hint(),
            PowerError::Changing { .. } => {
                "pass --wait to let that change finish and then power it, or retry when it has finished".into()
            }
            PowerError::OffRefused { .. } => {
                "Watcher powers off only deployed hosts; pass --force if you mean it".into()
            }
            PowerError::NotAllocated { .. } => "deploy (or allocate) the machine in MAAS first".into(),
            PowerError::WaitTimedOut { .. } => "check the node's BMC, or wait longer with --timeout".into(),
        }
    }
}

/// Finds `wanted` (an id or a name) and powers it as `request` says.
pub fn run(client: &dyn MetalClient, wanted: &str, request: &Request) -> Result<Outcome, PowerError> {
    let node = metal::resolve_node(client, wanted)?;
    let label = if node.hostname.is_empty() { node.id.clone() } else { format!("{} ({})", node.hostname, node.id) };
    let deadline = Instant::now() + request.timeout;
    let timed_out = |reading: &PowerReading| PowerError::WaitTimedOut {
        label: label.clone(),
        reading: describe_reading(reading),
        timeout: request.timeout,
    };
    let mut current = client.read_power(&node.id)?;
    let Some(target) = request.target else {
        return Ok(Outcome { node, reading: current, note: None });
    };
    let mut waited = false;
    if let Some(changing_to) = current.changing_to {
        // The service is changing the power now: what the node ends in
        // decides what to do.
        if !request.wait {
            if changing_to == target {
                return Ok(Outcome { node, reading: current, note: None });
            }
            return Err(PowerError::Changing { label, to: changing_to });
        }
        let (settled, done) = survey::wait_for_settled(client, &node.id, deadline, &std::thread::sleep)?;
        if !done {
            return Err(timed_out(&settled));
        }
        current = settled;
        waited = true;
    }
    if current.state == target {
        return Ok(Outcome { node, reading: current, note: (!waited).then_some("already") });
    }
    if target == PowerState::Off && !node.deployed && !request.force {
        return Err(PowerError::OffRefused { state: describe_state(&node), label });
    }
    let outcome = match target {
        PowerState::On => client.power_on(&node.id),
        _ => client.power_off(&node.id),
    };
    if let Err(MetalError::Maas(MaasError::Conflict { detail })) = &outcome {
        if detail.contains("allocated") {
            return Err(PowerError::NotAllocated { state: describe_state(&node), label });
        }
    }
    outcome?;
    if !request.wait {
        return Ok(Outcome { node, reading: PowerReading::settled(target, None), note: Some("requested") });
    }
    let (reading, reached) = survey::wait_for_power(client, &node.id, target, deadline, &std::thread::sleep)?;
    if !reached {
        return Err(timed_out(&reading));
    }
    Ok(Outcome { node, reading, note: None })
}

/// `on`, or `on, changing to off` while a change is in flight.
fn describe_reading(reading: &PowerReading) -> String {
    match reading.changing_to {
        Some(to) => format!("{}, changing to {to}", reading.state),
        None => reading.state.to_string(),
    }
}

/// The node's provision state, quoted, for messages.
fn describe_state(node: &Node) -> String {
    if node.provision_state.is_empty() {
        "in an unknown state".to_owned()
    } else {
        format!("`{}`", node.provision_state)
    }
}
