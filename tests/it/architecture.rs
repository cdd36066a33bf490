//! The layering ARCHITECTURE.md describes, checked on the source: the
//! folders of `src/` are the layers and import only downwards, no module
//! imports one that imports it back, protocol clients import nothing but
//! each other and the secret values, the faces neither write files nor
//! merge, and the code map names every source file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The library's layers, from the top down: a file imports only from its
/// own layer or the layers after it. `main.rs` and `cli/` are the binary,
/// above them all.
const LAYERS: [&str; 9] = ["charm", "exit_codes", "ops", "config", "watcher", "metal", "clients", "host", "secret"];

/// What the protocol clients may import.
const PROTOCOL_MAY_USE: [&str; 2] = ["clients", "secret"];

/// One `src/` file: its path, its module path (`clients::maas::url`), and
/// its text minus its unit tests and comments.
struct File {
    path: String,
    module: String,
    text: String,
}

impl File {
    /// The layer: the first folder, or the file's own name at the top.
    fn layer(&self) -> &str {
        self.module.split("::").next().unwrap_or("")
    }
}

fn files() -> Vec<File> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new("src").to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix("src").unwrap().with_extension("");
            let mut parts: Vec<String> =
                rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            // Comments (docs included) may name any module.
            let text: String =
                text.lines().filter(|l| !l.trim_start().starts_with("//")).map(|l| format!("{l}\n")).collect();
            out.push(File { path: path.display().to_string(), module: parts.join("::"), text });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The library files: not the binary's (`main.rs`, `cli/`), not `lib.rs`.
fn library() -> Vec<File> {
    files().into_iter().filter(|f| !matches!(f.layer(), "main" | "cli" | "lib")).collect()
}

/// The module paths `text` names through `crate::`, a `use crate::{..}`
/// group's items included; `crate::Error` is `ops::error`.
fn imports(text: &str) -> BTreeSet<String> {
    fn path_of(rest: &str) -> String {
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        let segments: Vec<&str> = rest[..end]
            .split("::")
            .take_while(|s| {
                !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            })
            .collect();
        segments.join("::")
    }
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let items: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end].split(',').map(str::trim).collect()
        } else {
            vec![rest]
        };
        for item in items {
            let path = if item.starts_with("Error") { "ops::error".to_owned() } else { path_of(item) };
            if !path.is_empty() {
                found.insert(path);
            }
        }
    }
    found
}

/// The library module a path names: the longest prefix that is a module.
fn module_of<'a>(path: &str, modules: &'a BTreeSet<String>) -> Option<&'a String> {
    let mut parts: Vec<&str> = path.split("::").collect();
    while !parts.is_empty() {
        if let Some(m) = modules.get(&parts.join("::")) {
            return Some(m);
        }
        parts.pop();
    }
    None
}

/// Each library module and the library modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = library();
    let modules: BTreeSet<String> = files.iter().map(|f| f.module.clone()).collect();
    files
        .iter()
        .map(|f| {
            let deps = imports(&f.text)
                .iter()
                .filter_map(|p| module_of(p, &modules))
                .filter(|m| **m != f.module)
                .cloned()
                .collect();
            (f.module.clone(), deps)
        })
        .collect()
}

fn layer_rank(module: &str) -> usize {
    let layer = module.split("::").next().unwrap_or("");
    LAYERS.iter().position(|l| *l == layer).unwrap_or_else(|| panic!("{module} is in no layer of {LAYERS:?}"))
}

#[test]
fn every_folder_of_src_is_a_layer_and_imports_only_downwards() {
    let graph = graph();
    assert!(graph.len() > 30, "the modules were not read: {graph:?}");
    assert!(graph["charm"].contains("ops"), "imports are not read: {:?}", graph["charm"]);
    for (module, deps) in &graph {
        for dep in deps {
            assert!(layer_rank(dep) >= layer_rank(module), "{module} imports {dep}: an arrow up the layers {LAYERS:?}");
        }
    }
}

#[test]
fn the_modules_import_each_other_without_a_cycle() {
    let graph = graph();
    // Depth-first search; a module met again while on the path closes a cycle.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(at) = path.iter().position(|p| *p == m) {
            panic!("import cycle: {} -> {m}", path[at..].join(" -> "));
        }
        path.push(m);
        for dep in graph.get(m).into_iter().flatten() {
            visit(dep, graph, path, done);
        }
        path.pop();
        done.insert(m);
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn protocol_clients_know_nothing_of_charms_templates_or_the_cli() {
    let graph = graph();
    let clients: Vec<_> = graph.keys().filter(|m| m.starts_with("clients")).collect();
    assert!(clients.len() >= 8, "the clients were not found: {clients:?}");
    for client in clients {
        let wrong: Vec<_> =
            graph[client].iter().filter(|d| !PROTOCOL_MAY_USE.contains(&d.split("::").next().unwrap_or(""))).collect();
        assert!(wrong.is_empty(), "{client} imports {wrong:?}");
    }
}

#[test]
fn the_faces_neither_write_files_nor_merge() {
    let faces: Vec<File> = files().into_iter().filter(|f| matches!(f.layer(), "cli" | "charm")).collect();
    assert!(faces.len() >= 2, "the faces were not found");
    for face in &faces {
        for call in ["std::fs::write", "fs::remove_file", "write_if_changed", "ini::merge", "apply_removal"] {
            assert!(!face.text.contains(call), "{} calls {call}: that belongs to the operations", face.path);
        }
    }
}

#[test]
fn the_code_map_names_every_source_file() {
    let map = std::fs::read_to_string("ARCHITECTURE.md").unwrap();
    for file in files() {
        assert!(map.contains(&format!("`{}`", file.path)), "ARCHITECTURE.md does not name `{}`", file.path);
    }
}

/// The charm's option names, the keys of `charm/config.yaml`'s `options:`.
fn charm_options() -> Vec<String> {
    let yaml = std::fs::read_to_string("charm/config.yaml").unwrap();
    let options: Vec<String> = yaml
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
        .filter(|k| !k.starts_with(' ') && k.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .map(str::to_owned)
        .collect();
    assert!(options.len() >= 10 && options.iter().any(|o| o == "maas-url"), "options not read: {options:?}");
    options
}

/// `--` followed by a lowercase word, as a CLI flag is written.
fn cli_flags(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("--") {
        rest = &rest[at + 2..];
        let word: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect();
        if word.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            found.push(format!("--{word}"));
        }
    }
    found
}

#[test]
fn protocol_clients_name_no_charm_option_nor_cli_flag() {
    assert_eq!(cli_flags("a --wait b, --format json, -- x, ---, --9"), ["--wait", "--format"]);
    let options = charm_options();
    let clients: Vec<File> = files().into_iter().filter(|f| f.layer() == "clients").collect();
    assert!(clients.len() >= 8, "the clients were not found");
    let mut wrong = Vec::new();
    for client in &clients {
        for option in &options {
            if client.text.contains(option.as_str()) {
                wrong.push(format!("{} names the charm option {option}", client.path));
            }
        }
        for flag in cli_flags(&client.text) {
            wrong.push(format!("{} names the CLI flag {flag}", client.path));
        }
        if client.text.contains("watcher-metal ") {
            wrong.push(format!("{} names the command `watcher-metal ...`", client.path));
        }
    }
    assert!(wrong.is_empty(), "protocol clients speak only their protocol:\n{}", wrong.join("\n"));
}
