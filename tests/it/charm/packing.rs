//! The packed `.charm`, checked file by file: its entries and modes, the
//! yaml files against Juju's schemas and the binary's options, the
//! architecture in the manifest, and the licence notices of exactly the
//! crates linked in.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn yaml(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// Lists a zip's entries with their Unix modes, through Python's zipfile.
fn zip_entries(charm: &Path, dest: &Path) -> Vec<(String, u32)> {
    let script = "import json, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nz.extractall(sys.argv[2])\nprint(json.dumps([[i.filename, i.external_attr >> 16] for i in z.infolist()]))";
    let out = Command::new("python3").args(["-c", script]).arg(charm).arg(dest).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn packed_charm_has_the_right_files_modes_and_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let charm = dir.path().join("watcher-maas.charm");
    let out = Command::new("scripts/pack-charm").args(["--binary", bin(), "--output"]).arg(&charm).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let unpacked = dir.path().join("unpacked");
    let mut entries = zip_entries(&charm, &unpacked);
    entries.sort();
    let expected = [
        ("LICENSE", 0o100644),
        ("README.md", 0o100644),
        ("THIRD-PARTY-NOTICES.txt", 0o100644),
        ("actions.yaml", 0o100644),
        ("bin/watcher-metal", 0o100755),
        ("config.yaml", 0o100644),
        ("dispatch", 0o100755),
        ("manifest.yaml", 0o100644),
        ("metadata.yaml", 0o100644),
    ];
    let expected: Vec<(String, u32)> = expected.iter().map(|(n, m)| ((*n).to_owned(), *m)).collect();
    assert_eq!(entries, expected);
    assert_eq!(fs::read(unpacked.join("bin/watcher-metal")).unwrap(), fs::read(bin()).unwrap());

    // metadata.yaml: required strings; a container-scoped juju-info subordinate.
    let meta = yaml(&unpacked.join("metadata.yaml"));
    for key in ["name", "summary", "description"] {
        assert!(meta[key].as_str().is_some_and(|s| !s.is_empty()), "metadata {key}");
    }
    assert_eq!(meta["name"], "watcher-maas");
    assert_eq!(meta["subordinate"], true);
    assert_eq!(meta["requires"]["juju-info"]["interface"], "juju-info");
    assert_eq!(meta["requires"]["juju-info"]["scope"], "container");

    // config.yaml: Juju's types, defaults of the right type, and exactly the
    // options the binary knows.
    let config = yaml(&unpacked.join("config.yaml"));
    let options = config["options"].as_mapping().unwrap();
    let mut names: Vec<&str> = options.keys().map(|k| k.as_str().unwrap()).collect();
    names.sort();
    let mut known = watcher_metal::config::KNOWN_OPTIONS.to_vec();
    known.sort();
    assert_eq!(names, known);
    for (name, option) in options {
        let kind = option["type"].as_str().unwrap();
        assert!(["string", "int", "float", "boolean", "secret"].contains(&kind), "{name:?}: {kind}");
        assert!(option["description"].as_str().is_some_and(|d| d.len() > 20), "{name:?} needs a description");
        let default = &option["default"];
        let ok = match kind {
            "string" => default.is_string(),
            "int" => default.is_i64(),
            "secret" => default.is_null(),
            _ => true,
        };
        assert!(ok, "{name:?}: default {default:?} is not a {kind}");
    }
    assert_eq!(options["maas-api-key-secret"]["type"], "secret");

    // actions.yaml: valid names, additionalProperties false everywhere.
    let actions = yaml(&unpacked.join("actions.yaml"));
    let actions = actions.as_mapping().unwrap();
    let mut action_names: Vec<&str> = actions.keys().map(|k| k.as_str().unwrap()).collect();
    action_names.sort();
    assert_eq!(action_names, ["doctor", "list-nodes", "power-status", "validate-credentials"]);
    for (name, action) in actions {
        let name = name.as_str().unwrap();
        assert!(watcher_metal::host::juju::valid_action_key(name) && !name.contains('.'), "{name}");
        assert_eq!(action["additionalProperties"], false, "{name}");
        assert!(action["params"].is_mapping(), "{name}");
        let text = serde_yaml::to_string(action).unwrap();
        assert!(!text.contains("$schema") && !text.contains("$ref"));
    }

    // manifest.yaml: the architecture of the binary packed, one of those
    // charmcraft.yaml builds for.
    let manifest = yaml(&unpacked.join("manifest.yaml"));
    assert_eq!(manifest["bases"][0]["name"], "ubuntu");
    assert_eq!(manifest["bases"][0]["channel"], "24.04");
    let arch = elf_arch(&fs::read(bin()).unwrap()).expect("the test binary is an ELF binary of a charm architecture");
    assert_eq!(manifest["bases"].as_sequence().unwrap().len(), 1);
    assert_eq!(manifest["bases"][0]["architectures"], serde_yaml::to_value([arch]).unwrap());
    let charmcraft = yaml(Path::new("charmcraft.yaml"));
    let mut platforms: Vec<&str> =
        charmcraft["platforms"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
    platforms.sort();
    assert_eq!(platforms, CHARM_ARCHES);
    for arch in CHARM_ARCHES {
        let platform = &charmcraft["platforms"][arch];
        assert_eq!(platform["build-on"], platform["build-for"], "{arch} is built natively");
    }

    // LICENSE, and the committed notices (see the_committed_notices_name_exactly_the_linked_crates).
    assert_eq!(fs::read(unpacked.join("LICENSE")).unwrap(), fs::read("LICENSE").unwrap());
    let license = fs::read_to_string("LICENSE").unwrap();
    assert!(license.contains("Apache License\n                           Version 2.0, January 2004"));
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
    assert_eq!(
        fs::read(unpacked.join("THIRD-PARTY-NOTICES.txt")).unwrap(),
        fs::read("THIRD-PARTY-NOTICES.txt").unwrap()
    );

    // pack-charm refuses what is not a binary of a charm architecture, with
    // one line and no charm; a header of another charm architecture gives
    // that architecture's manifest, unless --arch says otherwise.
    let header = fs::read(bin()).unwrap()[..64].to_vec();
    let fake = |name: &str, data: &[u8]| {
        let path = dir.path().join(name);
        fs::write(&path, data).unwrap();
        path
    };
    let pack = |binary: &Path, args: &[&str]| {
        let charm = dir.path().join("other.charm");
        let _ = fs::remove_file(&charm);
        let out = Command::new("scripts/pack-charm")
            .arg("--binary")
            .arg(binary)
            .args(args)
            .arg("--output")
            .arg(&charm)
            .output()
            .unwrap();
        (out, charm)
    };
    let refused = [
        (fake("script", b"#!/bin/sh\nexit 0\n"), vec![], "not an ELF binary"),
        (fake("empty", b""), vec![], "not an ELF binary"),
        (
            fake("riscv", &elf_with_machine(&header, 243, false)),
            vec![],
            "for riscv (little-endian), not one of amd64, arm64, ppc64el, s390x",
        ),
        (fake("ppc64-be", &elf_with_machine(&header, 21, true)), vec![], "for ppc64 (big-endian)"),
        (fake("arm64", &elf_with_machine(&header, 183, false)), vec!["--arch", "amd64"], "for arm64, not amd64"),
        (dir.path().join("missing"), vec![], "cannot read the binary"),
    ];
    for (binary, args, message) in &refused {
        let (out, charm) = pack(binary, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", binary.display());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(&format!("error: {}: ", binary.display())) && stderr.contains(message), "{stderr}");
        assert!(!charm.exists());
    }
    for (name, machine, big_endian, arch) in [("arm64", 183, false, "arm64"), ("s390x", 22, true, "s390x")] {
        let binary = fake(name, &elf_with_machine(&header, machine, big_endian));
        let (out, charm) = pack(&binary, &["--arch", arch]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let unpacked = dir.path().join(format!("unpacked-{arch}"));
        zip_entries(&charm, &unpacked);
        let manifest = yaml(&unpacked.join("manifest.yaml"));
        assert_eq!(manifest["bases"][0]["architectures"], serde_yaml::to_value([arch]).unwrap());
    }

    // dispatch.
    let dispatch = fs::read_to_string(unpacked.join("dispatch")).unwrap();
    assert!(dispatch.starts_with("#!/bin/sh\n"));
    assert!(dispatch.trim_end().ends_with("exec ./bin/watcher-metal dispatch"));
}

/// THIRD-PARTY-NOTICES.txt, as committed, names every crate that Cargo.lock
/// links into the binary on Linux, at its locked version, and none that
/// only the tests and simulators use. (Its licence texts are held against
/// cargo-about by `.ci/run`: `scripts/third-party-notices --check`.)
#[test]
fn the_committed_notices_name_exactly_the_linked_crates() {
    let notices = fs::read_to_string("THIRD-PARTY-NOTICES.txt").unwrap();
    let (linked, dev_only) = linked_crates();
    assert!(linked.len() > 50, "{linked:?}");
    for krate in &linked {
        assert!(notices.contains(&format!("\n- {krate}")), "the notices miss {krate}: run scripts/third-party-notices");
    }
    for krate in &dev_only {
        assert!(!notices.contains(&format!("\n- {krate}")), "the notices name {krate}, which is not linked");
    }
    let listed = notices.lines().filter(|l| l.starts_with("- ") && !l.contains(" (")).count();
    assert!(listed >= linked.len(), "{listed} crates listed, {} linked", linked.len());
    assert!(notices.contains("Permission is hereby granted, free of charge"), "the MIT licence text");
}

/// charmcraft's build of watcher-metal: its pull copies the crate's own
/// files (scripts/crate-source) and never target/ or anything else of the
/// project directory, and the toolchain is the crate's rust-version; the
/// notices are the committed ones, no cargo-about is compiled.
#[test]
fn the_charmcraft_build_pulls_the_crate_only_with_the_pinned_toolchain() {
    let charmcraft = yaml(Path::new("charmcraft.yaml"));
    let part = &charmcraft["parts"]["watcher-metal"];
    let channel = part["rust-channel"].as_str().expect("rust-channel is a string");
    assert_eq!(channel, rust_version(), "rust-channel is Cargo.toml's rust-version");
    let pull = part["override-pull"].as_str().expect("the pull is overridden");
    assert!(!pull.contains("craftctl default"), "the default pull copies target/ too:\n{pull}");
    let lines: Vec<&str> = pull.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "\"$CRAFT_PROJECT_DIR/scripts/crate-source\" \"$CRAFT_PART_SRC\"");
    assert_eq!(lines[1..], [format!("rustup update {channel}"), format!("rustup default {channel}")]);
    let build = part["override-build"].as_str().unwrap();
    assert!(build.contains("THIRD-PARTY-NOTICES.txt") && !build.contains("third-party-notices"), "{build}");

    // What the pull gives, from this working tree (which has a target/).
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("scripts/crate-source").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(Path::new("target").is_dir());
    let mut copied = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !["target", ".git", "parts", "stage", "prime"].contains(&name.as_str()),
                "{} was copied",
                path.display()
            );
            assert!(!name.ends_with(".charm"), "{} was copied", path.display());
            if path.is_dir() {
                stack.push(path);
            } else {
                copied.push(path.strip_prefix(dir.path()).unwrap().to_path_buf());
            }
        }
    }
    // Every file of this tree the binary was built from, the same bytes:
    // what rustc's dep-info of the library and the binary (every
    // `deps/watcher_metal-*.d` that `cargo test` left) names.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deps_dir = Path::new(&bin()).parent().unwrap().join("deps");
    let mut ours: Vec<std::path::PathBuf> = Vec::new();
    for entry in fs::read_dir(&deps_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("watcher_metal-") && name.ends_with(".d")) {
            continue;
        }
        let dep_info = fs::read_to_string(&path).unwrap();
        let (_, deps) = dep_info.lines().next().unwrap().split_once(": ").unwrap();
        for dep in deps.replace("\\ ", "\u{0}").split(' ').filter(|p| !p.is_empty()) {
            let dep = std::path::PathBuf::from(dep.replace('\u{0}', " "));
            let relative = match dep.strip_prefix(root) {
                Ok(p) => p.to_path_buf(),
                Err(_) if dep.is_relative() => dep,
                Err(_) => continue,
            };
            // `src/config/../../templates/x.j2`, as include_str! names it.
            let relative = relative.components().fold(std::path::PathBuf::new(), |mut p, c| {
                match c {
                    std::path::Component::ParentDir => {
                        p.pop();
                    }
                    other => p.push(other),
                }
                p
            });
            if !relative.starts_with("target") && !ours.contains(&relative) {
                ours.push(relative);
            }
        }
    }
    assert!(ours.iter().any(|p| p.starts_with("templates")) && ours.len() > 40, "{ours:?}");
    for file in ours.iter().chain([&"Cargo.toml".into(), &"Cargo.lock".into(), &"sim/Cargo.toml".into()]) {
        assert_eq!(
            fs::read(dir.path().join(file)).ok(),
            fs::read(root.join(file)).ok(),
            "{} is not pulled as it is",
            file.display()
        );
    }
    assert!(
        copied.iter().any(|p| p == Path::new("THIRD-PARTY-NOTICES.txt"))
            && copied.iter().any(|p| p == Path::new("LICENSE"))
    );
    // And cargo loads the workspace from it, at the locked versions, none of
    // which asks for a newer Rust than the pinned one.
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = |v: &str| v.split('.').map(|n| n.parse::<u32>().unwrap()).collect::<Vec<_>>();
    for package in metadata["packages"].as_array().unwrap() {
        if let Some(needed) = package["rust_version"].as_str() {
            assert!(
                version(needed) <= version(channel),
                "{} {} needs Rust {needed}",
                package["name"],
                package["version"]
            );
        }
    }
}

/// Cargo.toml's `rust-version` (one line of the package table).
fn rust_version() -> String {
    let text = fs::read_to_string("Cargo.toml").unwrap();
    let line = text.lines().find(|l| l.starts_with("rust-version")).expect("rust-version in Cargo.toml");
    line.split_once('=').unwrap().1.trim().trim_matches('"').to_owned()
}

/// The architectures the charm is built for (charmcraft.yaml's platforms).
const CHARM_ARCHES: [&str; 4] = ["amd64", "arm64", "ppc64el", "s390x"];

/// A 64-bit ELF header's architecture, as Juju names it (e_machine and the
/// byte order), or None for anything else.
fn elf_arch(elf: &[u8]) -> Option<&'static str> {
    if elf.len() < 20 || &elf[..4] != b"\x7fELF" || elf[4] != 2 {
        return None;
    }
    let machine = match elf[5] {
        1 => u16::from_le_bytes([elf[18], elf[19]]),
        2 => u16::from_be_bytes([elf[18], elf[19]]),
        _ => return None,
    };
    match (machine, elf[5]) {
        (62, 1) => Some("amd64"),
        (183, 1) => Some("arm64"),
        (21, 1) => Some("ppc64el"),
        (22, 2) => Some("s390x"),
        _ => None,
    }
}

/// A copy of an ELF header for another machine and byte order.
fn elf_with_machine(header: &[u8], machine: u16, big_endian: bool) -> Vec<u8> {
    let mut elf = header.to_vec();
    let swap = (elf[5] == 2) != big_endian;
    elf[5] = if big_endian { 2 } else { 1 };
    if swap {
        elf[16..18].reverse(); // e_type
    }
    let bytes = if big_endian { machine.to_be_bytes() } else { machine.to_le_bytes() };
    elf[18..20].copy_from_slice(&bytes);
    assert_eq!(elf_arch(&elf).is_some(), [62, 183, 21, 22].contains(&machine) && big_endian == (machine == 22));
    elf
}

/// The crates linked into watcher-metal on Linux (`cargo tree`'s normal
/// dependencies), as "name version", and those that only its
/// dev-dependencies bring in; crates of this workspace aside.
fn linked_crates() -> (Vec<String>, Vec<String>) {
    let tree = |edges: &str| {
        let out = Command::new(env!("CARGO"))
            .args(["tree", "--locked", "--offline", "-p", "watcher-metal", "--target", "x86_64-unknown-linux-gnu"])
            .args(["-e", edges, "--prefix", "none", "--format", "{p}"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut crates: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            // "name vX.Y.Z", then "(proc-macro)", "(*)", or "(/path)" for
            // a crate of this workspace.
            .filter(|line| !line.contains(" (/"))
            .map(|line| {
                let mut words = line.split_whitespace();
                let (name, version) = (words.next().unwrap(), words.next().unwrap());
                format!("{name} {}", version.trim_start_matches('v'))
            })
            .collect();
        crates.sort();
        crates.dedup();
        crates
    };
    let linked = tree("normal");
    let dev_only = tree("normal,dev").into_iter().filter(|k| !linked.contains(k)).collect();
    (linked, dev_only)
}
