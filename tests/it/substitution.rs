//! `$` substitution in what we read of watcher.conf: memoised, loops and
//! runaway expansions reported by the binary, and the values held against
//! oslo.config itself (`tests/peers/substitution.py`) on generated files of
//! references, escapes, loops and missing options.
//!
//! The differential test needs WATCHER_METAL_PYTHON (oslo.config), as
//! `scripts/test` sets up; under CI the variable is required.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use serde_json::{json, Value};
use watcher_metal::watcher::ini::{check_substitutions, read_section, SubstitutionError};

use crate::common::*;

/// `a = $b$b$b`, `b = $c$c$c`, ... 20 levels deep: under 300 bytes, and
/// 3^20 bytes expanded.
fn nested() -> String {
    let names: Vec<char> = ('a'..='u').collect();
    let mut text = String::from("[DEFAULT]\n");
    for pair in names.windows(2) {
        text.push_str(&format!("{} = ${}${}${}\n", pair[0], pair[1], pair[1], pair[1]));
    }
    text.push_str("u = x\n[maas_client]\ntimeout = $a\n");
    assert!(text.len() <= 300, "{}", text.len());
    text
}

fn error_line(r: &Run) -> &str {
    r.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or("")
}

#[test]
fn validate_refuses_a_watcher_conf_whose_references_loop() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, "[DEFAULT]\na = $b\nb = $a\n[maas_client]\nurl = http://10.0.0.2:5240/MAAS\napi_key = $api\n");
    let r = run(&["validate", "--watcher-conf", path_str(&conf), "--quick"]);
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert_eq!(
        error_line(&r),
        format!("error: {}: `$` references loop: [DEFAULT] a -> [DEFAULT] b -> [DEFAULT] a", conf.display())
    );
    assert!(r.stderr.contains("hint: break the loop"), "{}", r.stderr);
}

#[test]
fn nested_references_are_refused_at_the_size_cap() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, &nested());
    let r = run(&["validate", "--watcher-conf", path_str(&conf), "--quick"]);
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(error_line(&r).contains("expands to more than 65536 bytes through `$` references"), "{}", r.stderr);
    // render --check reads the same file (for the clash check): same answer.
    let config = dir.path().join("charm.yaml");
    write(
        &config,
        &format!(
            "maas-url: http://10.0.0.2:5240/MAAS\nmaas-api-key: {KEY}\nwatcher-conf-path: {}\ndrop-in-root: {}\n",
            conf.display(),
            drop_in_root(&conf).display()
        ),
    );
    let r = run(&["render", "-c", path_str(&config), "--check"]);
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(error_line(&r).contains("expands to more than"), "{}", r.stderr);
    r.assert_no_secret();
}

// Differential: generated files against oslo.config, a batch of files per
// Python run.

const SECTIONS: [&str; 3] = ["DEFAULT", "s", "t"];

fn value() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "x",
        "y",
        "-",
        " ",
        "$a",
        "$b",
        "$c",
        "$d",
        "${a}",
        "${b}",
        "$s.a",
        "${t.b}",
        "$DEFAULT.c",
        "$t.d",
        "$$",
        "\\$",
        "$$a",
        "$nope",
        "${t.nope}",
        "$",
        "${",
    ]);
    prop::collection::vec(piece, 0..4).prop_map(|p| p.concat())
}

fn file() -> impl Strategy<Value = String> {
    let line = (prop::sample::select(vec!["a", "b", "c", "d"]), value()).prop_map(|(k, v)| format!("{k} = {v}\n"));
    prop::collection::vec(prop::collection::vec(line, 0..4), SECTIONS.len()).prop_map(|sections| {
        SECTIONS.iter().zip(sections).map(|(name, lines)| format!("[{name}]\n{}", lines.concat())).collect()
    })
}

/// The keys set in each section of `text`.
fn options_of(text: &str) -> BTreeMap<String, Vec<String>> {
    SECTIONS
        .iter()
        .map(|section| {
            let mut keys: Vec<String> = read_section(text, section).into_iter().map(|(k, _)| k).collect();
            keys.sort();
            keys.dedup();
            (section.to_string(), keys)
        })
        .collect()
}

/// What oslo.config reads from each of `texts`.
fn oslo_read(python: &str, texts: &[String]) -> Vec<Value> {
    let requests: Vec<Value> = texts.iter().map(|t| json!({ "text": t, "options": options_of(t) })).collect();
    let mut child = Command::new(python)
        .arg("tests/peers/substitution.py")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the oslo.config peer");
    child.stdin.take().unwrap().write_all(json!(requests).to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the oslo.config peer failed");
    serde_json::from_slice(&out.stdout).expect("the peer's answer is JSON")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Every value oslo.config reads reads the same in ours; where it
    /// recurses without end we report a loop, and where we report a loop
    /// it fails on the loop's first option.
    #[test]
    fn references_resolve_as_in_oslo_config(texts in prop::collection::vec(file(), 24)) {
        let Some(python) = peer_python("WATCHER_METAL_PYTHON", "the `$` substitution differential test") else {
            return Ok(());
        };
        let answers = oslo_read(&python, &texts);
        prop_assert_eq!(answers.len(), texts.len());
        for (text, answer) in texts.iter().zip(&answers) {
            prop_assert!(answer.get("values").is_some(), "oslo.config refused {:?}: {}", text, answer);
            let checked = check_substitutions(text);
            for (section, keys) in options_of(text) {
                let ours = read_section(text, &section);
                for key in keys {
                    let theirs = &answer["values"][&section][&key];
                    if let Some(error) = theirs.get("error") {
                        if error == "RecursionError" {
                            prop_assert!(
                                matches!(checked, Err(SubstitutionError::Cycle { .. } | SubstitutionError::TooDeep { .. })),
                                "[{}] {} loops in oslo.config, not in ours: {:?}", section, key, text
                            );
                        }
                        continue;
                    }
                    let mine = ours.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
                    prop_assert_eq!(theirs.as_str(), mine, "[{}] {} in {:?}", section, key, text);
                }
            }
            if let Err(SubstitutionError::Cycle { options }) = &checked {
                let (section, key) = &options[0];
                prop_assert!(
                    answer["values"][section][key].get("error").is_some(),
                    "we report a loop at [{}] {}, oslo.config reads it: {:?}", section, key, text
                );
            }
        }
    }
}
