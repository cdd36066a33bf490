//! What we render loads in Watcher's own option definitions (python-watcher
//! with oslo.config) and reads back equal to the charm config.
//!
//! Needs WATCHER_METAL_PYTHON: a Python with python-watcher (installed with
//! --no-deps) and oslo.config, as `scripts/test` sets up. Under CI the
//! variable is required, so the check cannot silently not run.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::*;
use serde_json::{json, Value};

fn python() -> Option<String> {
    peer_python("WATCHER_METAL_PYTHON", "the oslo.config round trip")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    DropIn,
    Merge,
    Full,
}

/// Renders `charm_yaml` (into the drop-in beside `existing`, merged into it,
/// or --full) and checks what oslo.config reads from the result, drop-ins
/// first, against `expected`.
fn round_trip(charm_yaml: &str, existing: Option<&str>, mode: Mode, expected: Value) {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    if let Some(text) = existing {
        write(&conf, text);
    }
    let config = dir.path().join("charm.yaml");
    write(
        &config,
        &format!(
            "{charm_yaml}watcher-conf-path: {}\ndrop-in-root: {}\n",
            conf.display(),
            drop_in_root(&conf).display()
        ),
    );
    let mut args = vec!["render", "-c", path_str(&config)];
    match mode {
        Mode::DropIn => {}
        Mode::Merge => args.push("--merge"),
        Mode::Full => args.extend(["--full", "--context", "examples/context.yaml"]),
    }
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let mut child = Command::new(python)
        .arg("tests/peers/oslo_roundtrip.py")
        .arg(&conf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the oslo.config check");
    child.stdin.take().unwrap().write_all(expected.to_string().as_bytes()).unwrap();
    let out = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!((out.code, out.stdout.trim()), (0, "ok"), "{}", out.stderr);
}

#[test]
fn maas_and_ironic_values_read_back_equal() {
    round_trip(
        &format!(
            "maas-url: http://10.0.0.2:5240/MAAS\nmaas-api-key: {KEY}\nmaas-timeout: 90\nironic-api-version: '1.78'\nironic-endpoint-type: internalURL\nironic-region-name: RegionOne\n"
        ),
        Some("[DEFAULT]\ndebug = true\n\n[maas_client]\nurl = http://old/MAAS\ntimeout = 5\n"),
        Mode::Merge,
        json!({
            "maas_client": {"url": "http://10.0.0.2:5240/MAAS", "api_key": KEY, "timeout": 90},
            "ironic_client": {"api_version": "1.78", "endpoint_type": "internalURL", "region_name": "RegionOne"},
        }),
    );
}

#[test]
fn the_drop_in_is_read_beside_the_principals_watcher_conf() {
    round_trip(
        &format!(
            "maas-url: http://10.0.0.2:5240/MAAS\nmaas-api-key: {KEY}\nironic-api-version: '1.78'\nironic-region-name: RegionOne\n"
        ),
        Some("[DEFAULT]\ndebug = true\n\n[maas_client]\n\n[database]\nconnection = sqlite://\n"),
        Mode::DropIn,
        json!({
            "maas_client": {"url": "http://10.0.0.2:5240/MAAS", "api_key": KEY, "timeout": 120},
            "ironic_client": {"api_version": "1.78", "endpoint_type": "publicURL", "region_name": "RegionOne"},
        }),
    );
}

#[test]
fn dollar_signs_and_quotes_are_read_literally() {
    // oslo.config substitutes $name and strips matching outer quotes.
    round_trip(
        &format!("maas-url: http://10.0.0.2:5240/MAAS$x\nmaas-api-key: {KEY}\nironic-region-name: '\"Region$One\"'\n"),
        Some("[DEFAULT]\n"),
        Mode::DropIn,
        json!({
            "maas_client": {"url": "http://10.0.0.2:5240/MAAS$x", "api_key": KEY, "timeout": 120},
            "ironic_client": {"region_name": "\"Region$One\""},
        }),
    );
}

#[test]
fn without_maas_watcher_sees_no_url_and_uses_ironic() {
    round_trip(
        "maas-url: ''\n",
        Some("[maas_client]\nurl = http://old/MAAS\napi_key = a:b:c\n"),
        Mode::Merge,
        json!({
            "maas_client": {"url": null, "api_key": null, "timeout": 60},
            "ironic_client": {"api_version": "1", "endpoint_type": "publicURL", "region_name": null},
        }),
    );
}

#[test]
fn full_render_loads_too() {
    round_trip(
        &format!("maas-url: https://maas.example.com:5443/MAAS\nmaas-api-key: {KEY}\n"),
        None,
        Mode::Full,
        json!({
            "maas_client": {"url": "https://maas.example.com:5443/MAAS", "api_key": KEY, "timeout": 120},
            "ironic_client": {"endpoint_type": "publicURL"},
        }),
    );
}

// Differential property tests: our writer and our reader against
// oslo.config itself (`oslo_roundtrip.py --serve`, one process for the
// whole binary, fed one JSON request a line).

mod differential {
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
    use std::sync::{Mutex, OnceLock};

    use proptest::prelude::*;
    use serde_json::{json, Value};
    use watcher_metal::config::render::{ini_value, oslo_literal};
    use watcher_metal::watcher::ini::read_section;

    struct Oslo {
        stdin: ChildStdin,
        stdout: BufReader<ChildStdout>,
        _child: Child,
    }

    /// The oslo.config peer, started on first use. Its stdin closes when
    /// this binary exits, and it exits with it.
    fn oslo() -> Option<&'static Mutex<Oslo>> {
        static OSLO: OnceLock<Option<Mutex<Oslo>>> = OnceLock::new();
        OSLO.get_or_init(|| {
            let python = super::python()?;
            let mut child = Command::new(python)
                .args(["tests/peers/oslo_roundtrip.py", "--serve"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("run the oslo.config peer");
            let stdin = child.stdin.take().unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            Some(Mutex::new(Oslo { stdin, stdout, _child: child }))
        })
        .as_ref()
    }

    /// What oslo.config reads from `text` for `options` (section -> keys).
    fn oslo_read(oslo: &Mutex<Oslo>, text: &str, options: &BTreeMap<String, Vec<String>>) -> Value {
        let mut peer = oslo.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let request = json!({ "text": text, "options": options });
        writeln!(peer.stdin, "{request}").unwrap();
        peer.stdin.flush().unwrap();
        let mut line = String::new();
        peer.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad answer ({e}): {line:?}"))
    }

    /// Characters that mean something to oslo.config's parser or its
    /// substitution, white space Python and Rust both strip, and others.
    fn value_char() -> impl Strategy<Value = char> {
        prop_oneof![
            Just(' '),
            Just('"'),
            Just('\''),
            Just('$'),
            Just('#'),
            Just(';'),
            Just('\\'),
            Just('{'),
            Just('}'),
            Just('='),
            Just(':'),
            Just('.'),
            Just('\u{a0}'),
            Just('\u{3000}'),
            Just('\u{212a}'),
            prop::char::range('a', 'c'),
            prop::char::range('0', '1'),
            Just('é'),
            Just('日'),
            Just('€'),
        ]
    }

    /// Values, short ones (where edges are most of the value) most often.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            2 => prop::collection::vec(value_char(), 0..3),
            1 => prop::collection::vec(value_char(), 0..12),
        ]
        .prop_map(|v| v.into_iter().collect())
    }

    /// Raw value text as a person writes it: the characters above, plus
    /// references to the options set in these files, escapes and quotes.
    fn raw_value() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => value(),
            1 => prop::sample::select(vec!["\"", "'", "\"\"", "' '", " \" ", "\"a'"]).prop_map(str::to_owned),
            1 => prop::sample::select(vec!["$a", "${b}", "$$", "\\$", "$t.a", "${t.b}", "$1", "${", "$"])
                .prop_map(str::to_owned),
        ];
        (prop::collection::vec(piece, 0..4), prop::sample::select(vec!["", "\"", "'"]), "[ ]{0,2}")
            .prop_map(|(pieces, quote, trailing)| format!("{quote}{}{quote}{trailing}", pieces.concat()))
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => prop::sample::select(vec!["[s]", "[S]", "[t]", "[t] "]).prop_map(str::to_owned),
            6 => (
                prop::sample::select(vec!["a", "b", "c"]),
                prop::sample::select(vec![" = ", "=", ": ", " :", "= "]),
                raw_value()
            )
                .prop_map(|(k, sep, v)| format!("{k}{sep}{v}")),
            1 => Just(String::new()),
            1 => prop::sample::select(vec!["# a = x", "; b = y", "#"]).prop_map(str::to_owned),
        ]
    }

    /// A file oslo.config parses: sections of options, blank lines,
    /// comments; an option may continue on indented lines. Mixed line
    /// endings, as Python's universal newlines read them.
    fn file() -> impl Strategy<Value = String> {
        let line_with_continuation =
            (line(), prop::option::weighted(0.15, value()), 0..3usize).prop_map(|(l, c, eol)| {
                let is_option = !l.is_empty() && !l.starts_with(['[', '#', ';']);
                let eol = ["\n", "\r\n", "\r"][eol];
                match c {
                    Some(more) if is_option => format!("{l}{eol}  x{more}{eol}"),
                    _ => format!("{l}{eol}"),
                }
            });
        prop::collection::vec(line_with_continuation, 0..14).prop_map(|lines| format!("[s]\n{}", lines.concat()))
    }

    /// The keys set in each section of `text` (lower-case section names).
    fn options_of(text: &str) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for section in ["s", "t"] {
            let mut keys: Vec<String> = read_section(text, section).into_iter().map(|(k, _)| k).collect();
            keys.sort();
            keys.dedup();
            out.insert(section.to_owned(), keys);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Every value we render reads back equal in oslo.config, or we
        /// refuse it (only a `\$`, which oslo.config cannot hold).
        #[test]
        fn rendered_values_read_back_equal_in_oslo_config(v in value()) {
            let Some(oslo) = oslo() else { return Ok(()) };
            let rendered = ini_value(&minijinja::Value::from(oslo_literal(&v)));
            if v.contains("\\$") {
                prop_assert!(rendered.is_err());
                return Ok(());
            }
            let text = format!("[DEFAULT]\n[s]\nk = {}\n", rendered.unwrap());
            let answer = oslo_read(oslo, &text, &BTreeMap::from([("s".to_owned(), vec!["k".to_owned()])]));
            prop_assert_eq!(&answer["values"]["s"]["k"], &json!(v), "{:?}", text);
            prop_assert_eq!(read_section(&text, "s"), vec![("k".to_owned(), v)]);
        }

        /// Generated files: every option oslo.config reads without an error
        /// reads the same in ours.
        #[test]
        fn files_read_the_same_as_in_oslo_config(text in file()) {
            let Some(oslo) = oslo() else { return Ok(()) };
            let options = options_of(&text);
            let answer = oslo_read(oslo, &text, &options);
            prop_assert!(answer.get("values").is_some(), "oslo.config refused {:?}: {}", text, answer);
            for (section, keys) in &options {
                let ours = read_section(&text, section);
                for key in keys {
                    let theirs = &answer["values"][section][key];
                    if theirs.get("error").is_some() {
                        // A reference oslo.config cannot resolve (an option
                        // not set, a loop): it fails, which a value cannot say.
                        continue;
                    }
                    let mine = ours.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
                    prop_assert_eq!(theirs.as_str(), mine, "[{}] {} in {:?}", section, key, text);
                }
            }
        }
    }
}
