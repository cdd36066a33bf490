//! The simulated MAAS's machines as it tracks them: lookups by id, the
//! zone, pool and domain ids its JSON refers to, power changes still
//! settling, BMC failures, and each machine's JSON, rendered once per change.

use std::collections::HashMap;
use std::time::Instant;

use super::json::{self, Refs};
use super::model::{BmcFailure, PowerState, SimMachine};

pub(super) struct Entry {
    pub machine: SimMachine,
    /// The machine's JSON, rendered when first needed after a change.
    pub json: Option<String>,
}

pub(super) struct Pending {
    pub index: usize,
    pub state: PowerState,
    pub due: Instant,
}

pub(super) struct Inventory {
    pub entries: Vec<Entry>,
    pub by_id: HashMap<String, usize>,
    pub zone_ids: HashMap<String, usize>,
    pub pool_ids: HashMap<String, usize>,
    pub domain_ids: HashMap<String, usize>,
    pub pending: Vec<Pending>,
    pub bmc: HashMap<String, BmcFailure>,
}

impl Inventory {
    pub fn new(machines: Vec<SimMachine>) -> Inventory {
        let mut zone_ids = HashMap::from([("default".to_string(), 1)]);
        let mut pool_ids = HashMap::from([("default".to_string(), 0)]);
        let mut domain_ids = HashMap::from([("maas".to_string(), 0)]);
        let mut by_id = HashMap::new();
        for (i, m) in machines.iter().enumerate() {
            by_id.entry(m.system_id.clone()).or_insert(i);
            let n = zone_ids.len() + 1;
            zone_ids.entry(m.zone.clone()).or_insert(n);
            let n = pool_ids.len();
            pool_ids.entry(m.pool.clone()).or_insert(n);
            let n = domain_ids.len();
            domain_ids.entry(m.domain.clone()).or_insert(n);
        }
        let entries = machines.into_iter().map(|machine| Entry { machine, json: None }).collect();
        Inventory { entries, by_id, zone_ids, pool_ids, domain_ids, pending: Vec::new(), bmc: HashMap::new() }
    }

    /// Applies the power changes that are due.
    pub fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].due <= now {
                let p = self.pending.remove(i);
                self.set_power(p.index, p.state);
            } else {
                i += 1;
            }
        }
    }

    pub fn set_power(&mut self, index: usize, state: PowerState) {
        if let Some(e) = self.entries.get_mut(index) {
            if e.machine.power_state != state {
                e.machine.power_state = state;
                e.json = None;
            }
        }
    }

    pub fn json(&mut self, index: usize) -> &str {
        let refs = {
            let m = &self.entries[index].machine;
            Refs {
                zone_id: self.zone_ids.get(&m.zone).copied().unwrap_or(0),
                pool_id: self.pool_ids.get(&m.pool).copied().unwrap_or(0),
                domain_id: self.domain_ids.get(&m.domain).copied().unwrap_or(0),
            }
        };
        let e = &mut self.entries[index];
        e.json.get_or_insert_with(|| json::machine(&e.machine, index, &refs))
    }
}
