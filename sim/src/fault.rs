//! Injected faults, shared by the MAAS and Nova simulators: the rules a test
//! adds at run time, and how a matching rule turns a request's answer into
//! a broken one.

use std::sync::Mutex;
use std::time::Duration;

use crate::http::Response;
use crate::server::{lock, ConnInfo, Reply};

/// One injected fault: requests whose path contains `path_contains` and
/// whose `op` matches (`None` = any op, or none) get `fault` instead of the
/// normal answer, `times` times (`None` = forever). Rules are checked in the
/// order they were added; the first match wins.
#[derive(Clone, Debug)]
pub struct FaultRule {
    pub path_contains: String,
    pub op: Option<String>,
    pub times: Option<usize>,
    pub fault: Fault,
}

/// How a faulty server answers.
#[derive(Clone, Debug)]
pub enum Fault {
    /// This status, content type, body and optional `Retry-After`.
    Status { status: u16, content_type: String, body: String, retry_after: Option<String> },
    /// The normal answer, after this delay.
    Delay(Duration),
    /// Accept the request and never answer (until the client closes or the
    /// simulator stops).
    Hang,
    /// The normal answer, sent this slowly.
    Trickle { bytes_per_sec: u32 },
    /// Nothing for `delay`, then the normal answer sent this slowly: the
    /// headers arrive late and the body keeps coming.
    LateTrickle { delay: Duration, bytes_per_sec: u32 },
    /// 200 `application/json`, chunked, never ending.
    EndlessBody,
    /// The normal answer's headers and half its body, then the connection
    /// closes.
    CloseMidResponse,
    /// Headers claiming `Content-Length: 2147483648`, a few bytes, a short
    /// pause, then the connection closes.
    HugeContentLength,
    /// Bytes that are not HTTP at all, then the connection closes.
    Garbage,
}

/// The fault rules of one simulator.
#[derive(Default)]
pub(crate) struct FaultRules {
    rules: Mutex<Vec<FaultRule>>,
}

impl FaultRules {
    pub fn add(&self, rule: FaultRule) {
        lock(&self.rules).push(rule);
    }

    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    /// The fault of the first rule that `matches` and has uses left, with
    /// the use counted (a rule used up is removed).
    pub fn take(&self, matches: impl Fn(&FaultRule) -> bool) -> Option<Fault> {
        let mut rules = lock(&self.rules);
        let i = rules.iter().position(|r| r.times != Some(0) && matches(r))?;
        let rule = &mut rules[i];
        let fault = rule.fault.clone();
        if let Some(n) = rule.times.as_mut() {
            *n -= 1;
            if *n == 0 {
                rules.remove(i);
            }
        }
        Some(fault)
    }
}

/// What a simulator's broken answers look like.
pub(crate) struct FaultBodies {
    /// The content type of the endless and the huge bodies.
    pub content_type: &'static str,
    /// The body cut in half when the normal one is too short to cut.
    pub short_body: &'static [u8],
    /// The few bytes sent under a huge `Content-Length`.
    pub huge_prefix: &'static str,
}

/// The reply to a request given the fault injected into it (if any).
/// `normal` makes the normal answer and `finish` adds the headers every
/// answer has; both are used only if the fault needs them.
pub(crate) fn reply(
    fault: Option<Fault>,
    conn: &ConnInfo<'_>,
    bodies: &FaultBodies,
    normal: impl FnOnce() -> Response,
    finish: impl Fn(Response) -> Response,
) -> Reply {
    let Some(fault) = fault else { return Reply::Send(normal()) };
    match fault {
        Fault::Status { status, content_type, body, retry_after } => {
            let mut resp = Response::new(status, &content_type, body);
            if let Some(ra) = retry_after {
                resp = resp.with_header("Retry-After", ra);
            }
            Reply::Send(finish(resp))
        }
        Fault::Delay(d) => {
            if !conn.stop.sleep(d) {
                return Reply::Hang;
            }
            Reply::Send(normal())
        }
        Fault::Hang => Reply::Hang,
        Fault::Trickle { bytes_per_sec } => Reply::Trickle(normal(), bytes_per_sec),
        Fault::LateTrickle { delay, bytes_per_sec } => {
            if !conn.stop.sleep(delay) {
                return Reply::Hang;
            }
            Reply::Trickle(normal(), bytes_per_sec)
        }
        Fault::EndlessBody => Reply::EndlessBody(finish(Response::new(200, bodies.content_type, ""))),
        Fault::CloseMidResponse => {
            let mut resp = normal();
            if resp.body.len() < 2 {
                resp.body = bodies.short_body.to_vec();
            }
            Reply::CloseMidResponse(resp)
        }
        Fault::HugeContentLength => {
            Reply::HugeContentLength(finish(Response::new(200, bodies.content_type, bodies.huge_prefix)))
        }
        Fault::Garbage => Reply::Garbage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str, times: Option<usize>, status: u16) -> FaultRule {
        FaultRule {
            path_contains: path.into(),
            op: None,
            times,
            fault: Fault::Status { status, content_type: "text/plain".into(), body: String::new(), retry_after: None },
        }
    }

    fn status(f: Option<Fault>) -> Option<u16> {
        match f {
            Some(Fault::Status { status, .. }) => Some(status),
            _ => None,
        }
    }

    #[test]
    fn rules_are_used_up_in_order() {
        let rules = FaultRules::default();
        rules.add(rule("/a", Some(2), 500));
        rules.add(rule("/", None, 503));
        rules.add(rule("/b", Some(0), 502));
        let on = |path: &str| status(rules.take(|r| path.contains(&r.path_contains)));
        assert_eq!((on("/a"), on("/a"), on("/a")), (Some(500), Some(500), Some(503)));
        assert_eq!(on("/b"), Some(503));
        rules.clear();
        assert_eq!(on("/a"), None);
    }
}
