//! Powering one node on or off, with the policy both faces share: a node
//! already in the target state is left alone, a node not in use is powered
//! off only when forced (Watcher powers off deployed hosts only), a change
//! in flight is waited for or refused, and MAAS's "not allocated" refusal
//! is said plainly. Waiting polls through a [`Clock`], so that it is
//! tested without sleeping.

use std::time::{Duration, Instant};

use crate::clients::maas::MaasError;
use crate::metal::{self, MetalClient, MetalError, Node, PowerReading, PowerState};
use crate::ops::clock::Clock;

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
    /// What the face calls `wait`, `force` and `timeout`, for hints.
    pub switches: Switches,
}

/// The names a face gives a [`Request`]'s switches (the CLI's `--wait`), so
/// that a refusal's hint names what the user can set. An empty name is a
/// switch the face does not offer: the hint leaves it out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Switches {
    /// [`Request::wait`].
    pub wait: &'static str,
    /// [`Request::force`].
    pub force: &'static str,
    /// [`Request::timeout`].
    pub timeout: &'static str,
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowerError {
    /// Finding the node, reading its power or asking for the change failed.
    #[error(transparent)]
    Metal(#[from] MetalError),
    /// The service is changing the node's power to the other state.
    #[error("{label} is changing its power to {to} now")]
    Changing {
        /// The node, as `hostname (id)` or its id alone.
        label: String,
        /// The state the service is moving it to.
        to: PowerState,
        /// The face's names, for the hint.
        switches: Switches,
    },
    /// Power-off of a node that is not in use, without `force`.
    #[error("refusing to power off {label}: it is {state}, not in use")]
    OffRefused {
        /// The node, as `hostname (id)` or its id alone.
        label: String,
        /// Its provision state, quoted (or `in an unknown state`).
        state: String,
        /// The face's names, for the hint.
        switches: Switches,
    },
    /// MAAS powers on only machines that are allocated or deployed.
    #[error(
        "MAAS will not power on {label}: it is {state}, and MAAS powers on only machines that are allocated or deployed"
    )]
    NotAllocated {
        /// The node, as `hostname (id)` or its id alone.
        label: String,
        /// Its provision state, quoted (or `in an unknown state`).
        state: String,
    },
    /// `wait`: the state was not reached in time.
    #[error("{label} is still {reading} after {} s", timeout.as_secs())]
    WaitTimedOut {
        /// The node, as `hostname (id)` or its id alone.
        label: String,
        /// The last power read: `on`, or `on, changing to off`.
        reading: String,
        /// How long was waited ([`Request::timeout`]).
        timeout: Duration,
        /// The face's names, for the hint.
        switches: Switches,
    },
}

impl PowerError {
    /// What to do about it.
    pub(crate) fn hint(&self) -> String {
        match self {
            PowerError::Metal(e) => e.hint(),
            PowerError::Changing { switches, .. } => match switches.wait {
                "" => "retry when it has finished".into(),
                wait => {
                    format!("pass {wait} to let that change finish and then power it, or retry when it has finished")
                }
            },
            PowerError::OffRefused { switches, .. } => match switches.force {
                "" => "Watcher powers off only deployed hosts".into(),
                force => format!("Watcher powers off only deployed hosts; pass {force} if you mean it"),
            },
            PowerError::NotAllocated { .. } => "deploy (or allocate) the machine in MAAS first".into(),
            PowerError::WaitTimedOut { switches, .. } => match switches.timeout {
                "" => "check the node's BMC".into(),
                timeout => format!("check the node's BMC, or wait longer with {timeout}"),
            },
        }
    }
}

/// Finds `wanted` (an id or a name) and powers it as `request` says,
/// waiting on `clock`.
pub fn run(
    client: &dyn MetalClient,
    wanted: &str,
    request: &Request,
    clock: &dyn Clock,
) -> Result<Outcome, PowerError> {
    let node = metal::resolve_node(client, wanted)?;
    let label = if node.hostname.is_empty() { node.id.clone() } else { format!("{} ({})", node.hostname, node.id) };
    let switches = request.switches;
    let deadline = clock.now() + request.timeout;
    let timed_out = |reading: &PowerReading| PowerError::WaitTimedOut {
        label: label.clone(),
        reading: describe_reading(reading),
        timeout: request.timeout,
        switches,
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
            return Err(PowerError::Changing { label, to: changing_to, switches });
        }
        let (settled, done) = wait_for_settled(client, &node.id, deadline, clock)?;
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
        return Err(PowerError::OffRefused { state: describe_state(&node), label, switches });
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
    let (reading, reached) = wait_for_power(client, &node.id, target, deadline, clock)?;
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

/// Polls the live power state until it is `target` with no change in
/// flight, backing off from 1 s to 10 s between queries, until `deadline`.
/// Returns the last reading and whether it reached the target.
fn wait_for_power(
    client: &dyn MetalClient,
    id: &str,
    target: PowerState,
    deadline: Instant,
    clock: &dyn Clock,
) -> Result<(PowerReading, bool), MetalError> {
    wait_until(client, id, deadline, clock, &|r| r.is(target))
}

/// Polls until the service has finished any power change it is making
/// (Ironic's `target_power_state` clears), until `deadline`.
fn wait_for_settled(
    client: &dyn MetalClient,
    id: &str,
    deadline: Instant,
    clock: &dyn Clock,
) -> Result<(PowerReading, bool), MetalError> {
    wait_until(client, id, deadline, clock, &|r| r.changing_to.is_none())
}

fn wait_until(
    client: &dyn MetalClient,
    id: &str,
    deadline: Instant,
    clock: &dyn Clock,
    done: &dyn Fn(&PowerReading) -> bool,
) -> Result<(PowerReading, bool), MetalError> {
    let mut interval = Duration::from_secs(1);
    loop {
        let reading = client.read_power(id)?;
        if done(&reading) {
            return Ok((reading, true));
        }
        let now = clock.now();
        if now >= deadline {
            return Ok((reading, false));
        }
        clock.sleep(interval.min(deadline - now));
        interval = (interval * 3 / 2).min(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::clients::maas::MaasError;
    use crate::metal::{test_node, Backend};
    use crate::ops::clock::FakeClock;

    /// One node whose power readings are scripted: each read takes the
    /// next, the last one repeats; power requests are recorded.
    struct Scripted {
        node: Node,
        readings: Mutex<Vec<PowerReading>>,
        requests: Mutex<Vec<&'static str>>,
        refuse_on: Option<MaasError>,
    }

    impl Scripted {
        fn new(node: Node, readings: &[PowerReading]) -> Scripted {
            Scripted {
                node,
                readings: Mutex::new(readings.to_vec()),
                requests: Mutex::new(Vec::new()),
                refuse_on: None,
            }
        }
        fn requests(&self) -> Vec<&'static str> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl MetalClient for Scripted {
        fn backend(&self) -> Backend {
            Backend::Ironic
        }
        fn list_nodes(&self) -> Result<Vec<Node>, MetalError> {
            Ok(vec![self.node.clone()])
        }
        fn get_node(&self, id: &str) -> Result<Node, MetalError> {
            if id == self.node.id {
                Ok(self.node.clone())
            } else {
                Err(MetalError::NotFound(id.to_owned()))
            }
        }
        fn query_power_state(&self, id: &str) -> Result<PowerState, MetalError> {
            Ok(self.read_power(id)?.state)
        }
        fn read_power(&self, _: &str) -> Result<PowerReading, MetalError> {
            let mut readings = self.readings.lock().unwrap();
            if readings.len() > 1 {
                Ok(readings.remove(0))
            } else {
                Ok(readings[0].clone())
            }
        }
        fn power_on(&self, _: &str) -> Result<(), MetalError> {
            self.requests.lock().unwrap().push("on");
            match &self.refuse_on {
                Some(e) => Err(e.clone().into()),
                None => Ok(()),
            }
        }
        fn power_off(&self, _: &str) -> Result<(), MetalError> {
            self.requests.lock().unwrap().push("off");
            Ok(())
        }
    }

    fn settled(state: PowerState) -> PowerReading {
        PowerReading::settled(state, None)
    }

    fn changing(state: PowerState, to: PowerState) -> PowerReading {
        PowerReading { state, raw: None, changing_to: Some(to) }
    }

    const CLI: Switches = Switches { wait: "--wait", force: "--force", timeout: "--timeout" };

    fn request(target: Option<PowerState>, wait: bool) -> Request {
        Request { target, wait, force: false, timeout: Duration::from_secs(60), switches: CLI }
    }

    fn node() -> Node {
        test_node("uuid-1", "bm-1", "", None)
    }

    #[test]
    fn status_shows_a_change_in_flight() {
        let client = Scripted::new(node(), &[changing(PowerState::On, PowerState::Off)]);
        let clock = FakeClock::new(0);
        let done = run(&client, "bm-1", &request(None, false), &clock).unwrap();
        assert_eq!(done.reading.changing_to, Some(PowerState::Off));
        assert!(clock.slept().is_empty() && client.requests().is_empty());
    }

    #[test]
    fn waiting_backs_off_on_the_clock_until_the_state_is_reached() {
        let mut readings = vec![settled(PowerState::Off)];
        readings.extend(std::iter::repeat_n(changing(PowerState::Off, PowerState::On), 5));
        readings.push(settled(PowerState::On));
        let client = Scripted::new(node(), &readings);
        let clock = FakeClock::new(0);
        let done = run(&client, "uuid-1", &request(Some(PowerState::On), true), &clock).unwrap();
        assert_eq!(done.reading, settled(PowerState::On));
        assert_eq!(done.note, None);
        assert_eq!(client.requests(), ["on"]);
        let ms: Vec<u128> = clock.slept().iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [1000, 1500, 2250, 3375, 5062]);
    }

    #[test]
    fn waiting_gives_up_at_the_deadline_without_sleeping_past_it() {
        let client = Scripted::new(node(), &[settled(PowerState::On), changing(PowerState::On, PowerState::Off)]);
        let clock = FakeClock::new(0);
        let err = run(&client, "uuid-1", &request(Some(PowerState::Off), true), &clock).unwrap_err();
        assert_eq!(err.to_string(), "bm-1 (uuid-1) is still on, changing to off after 60 s");
        assert_eq!(err.hint(), "check the node's BMC, or wait longer with --timeout");
        let slept: Duration = clock.slept().iter().sum();
        assert_eq!(slept, Duration::from_secs(60), "{:?}", clock.slept());
        assert!(clock.slept().iter().all(|d| *d <= Duration::from_secs(10)));
    }

    #[test]
    fn a_change_in_flight_is_waited_for_then_the_target_powered() {
        // Ironic is powering the node on; off is wanted: wait, then power off.
        let in_flight = changing(PowerState::Off, PowerState::On);
        let readings = [in_flight.clone(), in_flight, settled(PowerState::On), settled(PowerState::Off)];
        let client = Scripted::new(node(), &readings);
        let clock = FakeClock::new(0);
        let done = run(&client, "uuid-1", &request(Some(PowerState::Off), true), &clock).unwrap();
        assert_eq!(client.requests(), ["off"]);
        assert_eq!(done.reading.state, PowerState::Off);
        assert_eq!(clock.slept(), [Duration::from_secs(1)]);
    }

    #[test]
    fn a_change_in_flight_is_refused_without_wait_in_the_faces_words() {
        let client = Scripted::new(node(), &[changing(PowerState::Off, PowerState::On)]);
        let clock = FakeClock::new(0);
        let err = run(&client, "uuid-1", &request(Some(PowerState::Off), false), &clock).unwrap_err();
        assert!(matches!(err, PowerError::Changing { to: PowerState::On, .. }), "{err:?}");
        assert_eq!(
            err.hint(),
            "pass --wait to let that change finish and then power it, or retry when it has finished"
        );
        let mut bare = request(Some(PowerState::Off), false);
        bare.switches = Switches::default();
        let err = run(&client, "uuid-1", &bare, &clock).unwrap_err();
        assert_eq!(err.hint(), "retry when it has finished");
        // The same change in flight is no conflict: nothing to do.
        let done = run(&client, "uuid-1", &request(Some(PowerState::On), false), &clock).unwrap();
        assert!(client.requests().is_empty() && done.note.is_none());
    }

    #[test]
    fn power_off_of_a_node_not_in_use_needs_force() {
        let mut idle = node();
        idle.deployed = false;
        idle.provision_state = "available".into();
        let client = Scripted::new(idle, &[settled(PowerState::On)]);
        let clock = FakeClock::new(0);
        let err = run(&client, "uuid-1", &request(Some(PowerState::Off), false), &clock).unwrap_err();
        assert_eq!(err.to_string(), "refusing to power off bm-1 (uuid-1): it is `available`, not in use");
        assert_eq!(err.hint(), "Watcher powers off only deployed hosts; pass --force if you mean it");
        assert!(client.requests().is_empty());
        let forced = Request { force: true, ..request(Some(PowerState::Off), false) };
        let done = run(&client, "uuid-1", &forced, &clock).unwrap();
        assert_eq!((client.requests(), done.note), (vec!["off"], Some("requested")));
        let already = run(&client, "uuid-1", &request(Some(PowerState::On), false), &clock).unwrap();
        assert_eq!(already.note, Some("already"));
    }

    #[test]
    fn maas_refusing_an_unallocated_machine_is_said_plainly() {
        let mut ready = node();
        ready.provision_state = "Ready".into();
        let mut client = Scripted::new(ready, &[settled(PowerState::Off)]);
        client.refuse_on = Some(MaasError::Conflict { detail: "Machine is not allocated".into() });
        let err = run(&client, "uuid-1", &request(Some(PowerState::On), false), &FakeClock::new(0)).unwrap_err();
        assert!(matches!(err, PowerError::NotAllocated { .. }), "{err:?}");
    }
}
