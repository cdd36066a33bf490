//! The effective configuration, differentially: for generated layouts of
//! drop-ins and a watcher.conf, `effective::Layout` must give each managed
//! option the value Watcher 12.0.0's own `parse_args` (oslo.config finding
//! the drop-in directory by itself, as on a unit) reads, and so the file:
//! each file's values carry its tag.
//!
//! Needs WATCHER12_PYTHON: python-watcher 12.0.0 with its dependencies, as
//! `scripts/test` sets up. Under CI the variable is required.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use proptest::prelude::*;
use watcher_metal::watcher::effective::{Layout, MANAGED_OPTIONS};

fn python() -> Option<String> {
    crate::common::peer_python("WATCHER12_PYTHON", "the oslo.config differential test")
}

/// One option line: key, separator, value.
type Line = (String, &'static str, String);
/// One section: its header as written, and its lines.
type Section = (String, Vec<Line>);

/// Drop-in names around ours, and names oslo.config must not read.
const NAMES: [&str; 10] = [
    "00-site.conf",
    "10-a.conf",
    "50-watcher-metal.conf",
    "50-watcher-metal.conf.bak",
    "60-b.conf",
    "90-z.conf",
    ".hidden.conf",
    "Z.conf",
    "a.conf",
    "README",
];

fn value_for(key: &'static str) -> BoxedStrategy<String> {
    match key {
        "url" => prop_oneof![Just(String::new()), (0..5u8).prop_map(|n| format!("http://maas{n}:5240/MAAS"))].boxed(),
        "api_key" => prop_oneof![Just(String::new()), (0..5u8).prop_map(|n| format!("c{n}:t{n}:s{n}"))].boxed(),
        "timeout" => (1..600u32).prop_map(|n| n.to_string()).boxed(),
        "api_version" => (1..99u8).prop_map(|n| format!("1.{n}")).boxed(),
        "endpoint_type" => {
            prop::sample::select(vec!["publicURL", "internalURL", "admin", "public"]).prop_map(str::to_owned).boxed()
        }
        _ => prop_oneof![Just(String::new()), (0..5u8).prop_map(|n| format!("Region{n}"))].boxed(),
    }
}

fn section() -> impl Strategy<Value = Section> {
    (0..MANAGED_OPTIONS.len(), any::<bool>()).prop_flat_map(|(i, upper)| {
        let (name, keys) = MANAGED_OPTIONS[i];
        let header = if upper { name.to_uppercase() } else { name.to_owned() };
        let line = (prop::sample::select(keys.to_vec()), prop::sample::select(vec![" = ", "=", ": "]))
            .prop_flat_map(|(key, sep)| value_for(key).prop_map(move |v| (key.to_owned(), sep, v)));
        prop::collection::vec(line, 0..4).prop_map(move |lines| (header.clone(), lines))
    })
}

fn file_text() -> impl Strategy<Value = Vec<Section>> {
    prop::collection::vec(section(), 0..4)
}

/// Files of one drop-in directory, by name.
type Dir = BTreeMap<&'static str, Vec<Section>>;

/// The project's directory, the program's, a shadowing program directory
/// (sometimes), and watcher.conf.
type Case = (Dir, Dir, Option<Dir>, Vec<Section>);

const PROGRAM: &str = "watcher-decision-engine";

fn dir() -> impl Strategy<Value = Dir> {
    prop::collection::btree_map(prop::sample::select(NAMES.to_vec()), file_text(), 0..4)
}

fn layout() -> impl Strategy<Value = Case> {
    (dir(), dir(), prop::option::weighted(0.15, dir()), file_text())
}

/// The file's text. Every non-empty value carries the file's `tag`, so a
/// value read names the file it came from (oslo.config's own record of the
/// file, `get_location`, is not reliable enough to judge by: it names the
/// last file with the section).
fn render(sections: &[Section], tag: usize) -> String {
    let mut text = String::from("# generated\n[DEFAULT]\ndebug = false\n");
    for (header, lines) in sections {
        text.push_str(&format!("\n[{header}]\n"));
        for (key, sep, value) in lines {
            let value = match (value.is_empty(), key.as_str()) {
                (true, _) => String::new(),
                (false, "timeout") => format!("{value}{tag:02}"),
                (false, _) => format!("{value}-f{tag}"),
            };
            text.push_str(&format!("{key}{sep}{value}\n"));
        }
    }
    text
}

/// Writes each case under its own HOME: `~/.watcher/watcher.conf`,
/// `~/.watcher/watcher.conf.d/`, `~/watcher-decision-engine.conf.d/` (where
/// `/etc/watcher-decision-engine.conf.d` is on a unit) and sometimes
/// `~/.watcher/watcher-decision-engine.conf.d/`, all of them oslo.config's
/// default directories.
fn write_case(root: &Path, n: usize, case: &Case) -> (PathBuf, PathBuf) {
    let home = root.join(format!("case-{n}"));
    let dir = home.join(".watcher");
    let dirs = [
        (dir.join("watcher.conf.d"), Some(&case.0)),
        (home.join(format!("{PROGRAM}.conf.d")), Some(&case.1)),
        (dir.join(format!("{PROGRAM}.conf.d")), case.2.as_ref()),
    ];
    std::fs::create_dir_all(&dir).unwrap();
    let mut tag = 0;
    for (path, files) in dirs {
        let Some(files) = files else { continue };
        std::fs::create_dir_all(&path).unwrap();
        for (name, sections) in files {
            std::fs::write(path.join(name), render(sections, tag)).unwrap();
            tag += 1;
        }
    }
    let conf = dir.join("watcher.conf");
    std::fs::write(&conf, render(&case.3, 99)).unwrap();
    (home, conf)
}

/// Each managed option's value in `layout`.
type Values = BTreeMap<String, Option<String>>;

fn values(layout: &Layout) -> Values {
    let mut out = BTreeMap::new();
    for (section, keys) in MANAGED_OPTIONS {
        for key in keys {
            out.insert(format!("{section}.{key}"), layout.setting(section, key).map(|s| s.value));
        }
    }
    out
}

/// What the program reads at start-up, and after the plugin loader's reload.
type Views = BTreeMap<String, Values>;

/// Our view of the case whose HOME (the drop-in root: `~/<program>.conf.d`
/// is read at start-up and after the reload) is `home`.
fn ours(home: &Path, conf: &Path) -> Views {
    let mut views = Views::new();
    views.insert("startup".into(), values(&Layout::read(conf, home, PROGRAM).unwrap()));
    views.insert("reloaded".into(), values(&Layout::read_reloaded(conf, home, PROGRAM).unwrap()));
    views
}

fn oslo(python: &str, cases: &[(PathBuf, PathBuf)]) -> Vec<Views> {
    let input: Vec<_> = cases.iter().map(|(home, conf)| serde_json::json!({"home": home, "conf": conf})).collect();
    let mut child = Command::new(python)
        .arg("tests/peers/effective_conf.py")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run Watcher's parse_args");
    child.stdin.take().unwrap().write_all(serde_json::Value::from(input).to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Batches of layouts run, each by one Python process: a fixed number, not
/// `PROPTEST_CASES` (CI raises that for the cheap property tests; one batch
/// here costs seconds).
const BATCHES: u32 = 6;

#[test]
fn the_effective_configuration_is_what_watcher_reads() {
    let Some(python) = python() else { return };
    // A runner of our own: the proptest! macro would take PROPTEST_CASES.
    let config =
        ProptestConfig { cases: BATCHES, max_shrink_iters: 30, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let outcome = runner.run(&prop::collection::vec(layout(), 40), |batch| {
        let root = tempfile::tempdir().unwrap();
        let cases: Vec<_> = batch.iter().enumerate().map(|(n, case)| write_case(root.path(), n, case)).collect();
        let theirs = oslo(&python, &cases);
        for (n, (home, conf)) in cases.iter().enumerate() {
            let ours = ours(home, conf);
            let theirs = &theirs[n];
            prop_assert_eq!(&ours, theirs, "case {}: {:?}", n, batch[n]);
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
