//! The layering ARCHITECTURE.md describes, checked on the source: no
//! import cycle among the library's modules, protocol clients that import
//! no charm, template or CLI code, faces that neither write files nor
//! merge, and a code map that names every source file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The protocol clients, and what they may import.
const PROTOCOL: [&str; 6] = ["http", "json_body", "keystone", "maas", "ironic", "nova"];
const PROTOCOL_MAY_USE: [&str; 9] =
    ["http", "json_body", "keystone", "maas", "ironic", "nova", "secret", "maas_url", "api_key"];

/// The library's top-level module of each `src/` file (`src/metal/x.rs`
/// belongs to `metal`), with the file's text minus its unit tests.
fn modules() -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
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
            let rel = path.strip_prefix("src").unwrap();
            let module = match rel.components().count() {
                1 => rel.file_stem().unwrap().to_string_lossy().into_owned(),
                _ => rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned(),
            };
            let text = std::fs::read_to_string(&path).unwrap();
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            // Comments (docs included) may name any module.
            let text: String =
                text.lines().filter(|l| !l.trim_start().starts_with("//")).map(|l| format!("{l}\n")).collect();
            out.entry(module).or_default().push((path.display().to_string(), text));
        }
    }
    out
}

/// The modules `text` refers to through `crate::` (and `super::` in a
/// submodule, which is its own module), `crate::Error` being `error`.
fn imports(text: &str, module: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end].split(',').map(|p| p.trim().split("::").next().unwrap_or("").trim()).collect()
        } else {
            vec![rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("")]
        };
        for name in names {
            let name = if name == "Error" { "error" } else { name };
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') && name != module {
                found.insert(name.to_owned());
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    modules()
        .into_iter()
        .filter(|(m, _)| m != "main" && m != "cli" && m != "lib")
        .map(|(m, files)| {
            let deps = files.iter().flat_map(|(_, text)| imports(text, &m)).collect();
            (m, deps)
        })
        .collect()
}

#[test]
fn the_modules_import_each_other_without_a_cycle() {
    let graph = graph();
    assert!(graph.len() > 25, "the modules were not read: {graph:?}");
    assert!(graph["dispatch"].contains("error"), "imports are not read: {:?}", graph["dispatch"]);
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
    for client in PROTOCOL {
        let wrong: Vec<_> = graph[client].iter().filter(|d| !PROTOCOL_MAY_USE.contains(&d.as_str())).collect();
        assert!(wrong.is_empty(), "{client} imports {wrong:?}");
    }
}

#[test]
fn the_faces_neither_write_files_nor_merge() {
    let modules = modules();
    for face in ["cli", "dispatch"] {
        for (path, text) in &modules[face] {
            for call in ["std::fs::write", "fs::remove_file", "write_if_changed", "ini::merge", "apply_removal"] {
                assert!(!text.contains(call), "{path} calls {call}: that belongs to the application layer");
            }
        }
    }
}

#[test]
fn the_code_map_names_every_source_file() {
    let map = std::fs::read_to_string("ARCHITECTURE.md").unwrap();
    for files in modules().values() {
        for (path, _) in files {
            assert!(map.contains(&format!("`{path}`")), "ARCHITECTURE.md does not name `{path}`");
        }
    }
}
