//! What the commands print: tables, text lines and JSON on standard
//! output, warnings on standard error, the progress bar.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use watcher_metal::config::Warning;
use watcher_metal::host::atomic_file::WriteOutcome;
use watcher_metal::{clients::openstack::nova, metal, ops::listing, ops::validate, secret, watcher::pairing};

use super::args::{Format, TableFormat};

pub(super) fn print_warnings(warnings: &[Warning]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// A unified diff of `old` to `new` with secrets masked.
pub(super) fn diff(old: &str, new: &str, path: &Path, mask: &dyn Fn(&str) -> String) -> String {
    let (old, new) = (mask(old), mask(new));
    let shown = path.display().to_string();
    similar::TextDiff::from_lines(&old, &new).unified_diff().context_radius(3).header(&shown, &shown).to_string()
}

pub(super) fn report(outcome: WriteOutcome, target: &Path) {
    print_stdout(&format!("{} {}\n", outcome.as_str(), target.display()));
}

/// Writes `value` as one line of JSON straight to standard output (no
/// intermediate copy: listings can be large).
pub(super) fn write_json_line(value: &impl serde::Serialize) {
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    // A closed pipe is not an error, as in print_stdout.
    if serde_json::to_writer(&mut out, value).is_ok() {
        let _ = out.write_all(b"\n").and_then(|()| out.flush());
    }
}

/// The error object every `--format json` failure prints: the exit code,
/// the one-line cause and the hint, as on standard error.
pub(super) fn json_error(code: u8, message: &str, hint: &str) -> serde_json::Value {
    serde_json::json!({ "code": code, "message": message, "hint": hint })
}

/// Prints a failure: `error:` and `hint:` on standard error, and with
/// `--format json` `{"error": {"code", "message", "hint"}}` on standard
/// output too. Whatever is shaped like a MAAS API key is masked in both:
/// errors never quote one, and this is the last guard.
pub(crate) fn print_error(code: u8, message: &str, hint: &str, json: bool) {
    let (message, hint) = (secret::mask_api_key_shapes(message), secret::mask_api_key_shapes(hint));
    if json {
        print_stdout(&format!("{}\n", serde_json::json!({ "error": json_error(code, &message, &hint) })));
    }
    eprintln!("error: {message}");
    if !hint.is_empty() {
        eprintln!("  hint: {hint}");
    }
}

/// Prints to standard output; a closed pipe (`| head`) is not an error.
pub(super) fn print_stdout(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

pub(super) fn json_report(result: &str, report: &validate::Report) -> serde_json::Value {
    serde_json::json!({
        "result": result,
        "api_url": report.api_url,
        "maas_version": report.maas_version,
        "user": report.user.as_ref().map(|u| &u.username),
        "is_superuser": report.user.as_ref().map(|u| u.is_superuser),
        "machines": report.machines,
        "latency_ms": report.latency_ms,
    })
}

pub(super) fn lines(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// One hypervisor of the `--nova` report.
#[derive(serde::Serialize)]
struct NovaRow<'a> {
    #[serde(flatten)]
    hypervisor: &'a nova::Hypervisor,
    watcher: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    power_state: Option<metal::PowerState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    saving_energy: Option<pairing::SavingEnergy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    near_miss: Option<&'a pairing::NearMiss>,
}

fn nova_rows<'a>(listing: &'a nova::HypervisorListing, pairing: &'a pairing::Pairing) -> Vec<NovaRow<'a>> {
    let handling = pairing.handling(listing.hypervisors.len());
    listing
        .hypervisors
        .iter()
        .zip(handling)
        .map(|(hypervisor, handling)| {
            let mut row = NovaRow {
                hypervisor,
                watcher: "skips",
                node_id: None,
                node_name: None,
                power_state: None,
                saving_energy: None,
                note: None,
                reason: None,
                near_miss: None,
            };
            match handling {
                pairing::Handling::Managed(m) => {
                    row.watcher = "manages";
                    row.node_id = Some(&m.node_id);
                    row.node_name = Some(&m.node_name);
                    row.power_state = Some(m.power_state);
                    row.saving_energy = m.saving_energy;
                    row.note = m.note.as_deref();
                }
                pairing::Handling::Skipped(u, near) => {
                    row.reason = Some(&u.reason);
                    row.near_miss = near;
                }
                pairing::Handling::Unknown => {}
            }
            row
        })
        .collect()
}

pub(super) fn print_nova_report(format: TableFormat, listing: &nova::HypervisorListing, pairing: &pairing::Pairing) {
    let rows = nova_rows(listing, pairing);
    match format {
        TableFormat::Json => {
            #[derive(serde::Serialize)]
            struct Report<'a> {
                backend: metal::Backend,
                summary: &'a pairing::Summary,
                nova: NovaMeta<'a>,
                hypervisors: &'a [NovaRow<'a>],
                near_misses: &'a [pairing::NearMiss],
                unpaired_nodes: &'a [pairing::UnpairedNode],
                plan: &'a pairing::SavingEnergyPlan,
                warnings: &'a [String],
            }
            #[derive(serde::Serialize)]
            struct NovaMeta<'a> {
                endpoint: &'a str,
                requested_microversion: &'a str,
                microversion: Option<&'a str>,
                pages: usize,
                running_vms_from: nova::RunningVmsSource,
            }
            write_json_line(&Report {
                backend: pairing.backend,
                summary: &pairing.summary,
                nova: NovaMeta {
                    endpoint: &listing.endpoint,
                    requested_microversion: &listing.requested_microversion,
                    microversion: listing.microversion.as_deref(),
                    pages: listing.pages,
                    running_vms_from: listing.running_vms_from,
                },
                hypervisors: &rows,
                near_misses: &pairing.near_misses,
                unpaired_nodes: &pairing.unpaired_nodes,
                plan: &pairing.plan,
                warnings: &pairing.warnings,
            });
        }
        TableFormat::Table => {
            let dash = || "-".to_owned();
            let opt = |v: Option<&String>| v.cloned().unwrap_or_else(dash);
            let mut table =
                vec![["HYPERVISOR", "STATE", "STATUS", "VMS", "WATCHER", "NODE", "POWER", "SAVING_ENERGY", "DETAIL"]
                    .map(str::to_owned)
                    .to_vec()];
            for row in &rows {
                let h = row.hypervisor;
                table.push(vec![
                    h.hostname.clone(),
                    opt(h.state.as_ref()),
                    opt(h.status.as_ref()),
                    h.running_vms.map_or_else(dash, |n| n.to_string()),
                    row.watcher.to_owned(),
                    row.node_id.map_or_else(dash, str::to_owned),
                    row.power_state.map_or_else(dash, |p| p.as_str().to_owned()),
                    row.saving_energy.map_or_else(dash, |v| v.as_str().to_owned()),
                    match (row.watcher, h.page.and_then(pairing::unseen_page)) {
                        ("manages", Some(past)) => row.note.map_or(past.clone(), |n| format!("{n}; {past}")),
                        _ => row.note.or(row.reason).unwrap_or("").to_owned(),
                    },
                ]);
            }
            let mut out = render_table(&table);
            let s = &pairing.summary;
            if !pairing.near_misses.is_empty() {
                out.push_str("\nnear misses (Watcher skips these and logs only INFO):\n");
                for m in &pairing.near_misses {
                    out.push_str(&format!("  {} {}\n", m.hypervisor, m.message));
                }
            }
            if !pairing.unpaired_nodes.is_empty() {
                out.push_str(&format!("\n{} nodes without a hypervisor (Watcher skips them):\n", s.unpaired_nodes));
                for u in &pairing.unpaired_nodes {
                    out.push_str(&format!("  {} {}: {}\n", u.node_id, u.node_name, u.reason));
                }
            }
            out.push_str(&format!(
                "\n{} of {} hypervisors can be power-managed by Watcher via {}; {} near misses, {} nodes without a hypervisor\n",
                s.managed,
                s.hypervisors,
                pairing.backend.as_str(),
                s.near_misses,
                s.unpaired_nodes
            ));
            let p = &pairing.plan;
            let action = if p.power_off > 0 {
                format!("it would power off {} (at random), keeping {} free node(s) on", p.power_off, p.keep_on)
            } else if p.power_on > 0 {
                format!("it would power on {} to keep {} free node(s) on", p.power_on, p.keep_on)
            } else {
                format!("it would change nothing (keeps {} free node(s) on)", p.keep_on)
            };
            out.push_str(&format!(
                "saving_energy (default parameters): {} power-off candidates, {} power-on reserve, {} busy, {} ignored{}; {action}\n",
                s.power_off_candidates,
                s.power_on_reserve,
                s.busy,
                s.ignored,
                if s.unknown > 0 { format!(", {} unknown", s.unknown) } else { String::new() },
            ));
            out.push_str(&format!(
                "Nova: {} hypervisors in {} page(s) at microversion {}; running VMs from {}\n",
                s.hypervisors,
                listing.pages,
                listing.microversion.as_deref().unwrap_or(&listing.requested_microversion),
                match listing.running_vms_from {
                    nova::RunningVmsSource::RunningVms => "running_vms",
                    nova::RunningVmsSource::Servers => "the servers listed per hypervisor",
                }
            ));
            print_stdout(&out);
            for w in &pairing.warnings {
                eprintln!("warning: {w}");
            }
        }
    }
}

pub(super) fn progress_bar(len: usize) -> indicatif::ProgressBar {
    // Shown only on a terminal, and only for runs long enough to need it.
    if len < 50 || !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} nodes queried ({eta} left)") {
        bar.set_style(style);
    }
    bar
}

pub(super) fn print_nodes(format: TableFormat, backend: metal::Backend, rows: &[listing::NodeRow]) {
    let counts = listing::count_by_power_state(rows);
    match format {
        TableFormat::Json => {
            #[derive(serde::Serialize)]
            struct Listing<'a> {
                backend: metal::Backend,
                nodes: &'a [listing::NodeRow],
                summary: std::collections::BTreeMap<&'static str, usize>,
            }
            let summary = counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
            write_json_line(&Listing { backend, nodes: rows, summary });
        }
        TableFormat::Table => {
            let mut table = vec![["ID", "HOSTNAME", "POWER", "STATE", "NOTE"].map(str::to_owned).to_vec()];
            for row in rows {
                table.push(vec![
                    row.node.id.clone(),
                    row.node.display_name().to_owned(),
                    row.node.power_state.as_str().to_owned(),
                    row.node.provision_state.clone(),
                    row.error.clone().unwrap_or_default(),
                ]);
            }
            let mut out = render_table(&table);
            let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
            out.push_str(&format!("{} nodes ({}) via {}\n", rows.len(), summary.join(", "), backend.as_str()));
            print_stdout(&out);
        }
    }
}

pub(super) fn print_hypervisor_report(format: TableFormat, backend: metal::Backend, pairs: &[pairing::NamedPair]) {
    let managed = pairs.iter().filter(|m| m.managed()).count();
    match format {
        TableFormat::Json => {
            let value = serde_json::json!({
                "backend": backend,
                "managed": managed,
                "skipped": pairs.len() - managed,
                "hypervisors": pairs,
            });
            print_stdout(&format!("{value}\n"));
        }
        TableFormat::Table => {
            let mut table = vec![["HYPERVISOR", "WATCHER", "NODE", "DETAIL"].map(str::to_owned).to_vec()];
            for m in pairs {
                let (verdict, node, detail) = match &m.node_id {
                    Some(id) => (
                        "manages",
                        id.clone(),
                        format!("power {}", m.power_state.map(metal::PowerState::as_str).unwrap_or("?")),
                    ),
                    None => ("skips", "-".to_owned(), m.reason.clone().unwrap_or_default()),
                };
                table.push(vec![m.hypervisor.clone(), verdict.to_owned(), node, detail]);
            }
            let mut out = render_table(&table);
            out.push_str(&format!(
                "{managed} of {} hypervisors can be power-managed by Watcher via {}\n",
                pairs.len(),
                backend.as_str()
            ));
            print_stdout(&out);
        }
    }
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
fn render_table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub(super) fn print_power(format: Format, node: &metal::Node, reading: &metal::PowerReading, note: Option<&str>) {
    match format {
        Format::Json => {
            let value = serde_json::json!({
                "id": node.id, "hostname": node.hostname, "power_state": reading.state,
                "raw_power_state": reading.raw, "changing_to": reading.changing_to, "note": note,
            });
            print_stdout(&format!("{value}\n"));
        }
        Format::Text => {
            let name = if node.hostname.is_empty() { &node.id } else { &node.hostname };
            let notes: Vec<String> = reading
                .changing_to
                .map(|to| format!("changing to {to}"))
                .into_iter()
                .chain(note.map(str::to_owned))
                .collect();
            let note = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) };
            print_stdout(&format!("{name} {}: {}{note}\n", node.id, reading.state));
        }
    }
}
