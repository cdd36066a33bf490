//! The environment systemd starts a service with, from what `systemctl`
//! prints: the manager's environment (`systemctl show-environment`, where
//! `DefaultEnvironment=` and `systemctl set-environment` land), then the
//! unit's `Environment=`, then its `EnvironmentFile=`s in order, each
//! assignment replacing an earlier one of the same name, then
//! `UnsetEnvironment=`; names that are not valid shell names dropped, as
//! systemd's `exec_context` does. Environment files are read as systemd
//! reads them (`parse_env_file_internal`: comments, quotes, backslash
//! escapes and continuation lines).
//!
//! Not seen: what a program the unit starts sets for itself, e.g. a shell
//! script that sources `/etc/default/...` and exports from it.

use std::path::PathBuf;

/// What `systemctl show -p LoadState -p Environment -p EnvironmentFiles
/// -p UnsetEnvironment UNIT` printed. Its `Debug` shows the names of the
/// assignments only: their values may hold passwords.
#[derive(Default, PartialEq, Eq)]
pub(crate) struct UnitEnvironment {
    /// `loaded`, `not-found`, `masked`, ...
    pub(crate) load_state: Option<String>,
    /// `Environment=`'s assignments, in order.
    pub(crate) environment: Vec<String>,
    /// `EnvironmentFile=`s: the path, and whether a missing file is fine
    /// (`-` before the path).
    pub(crate) files: Vec<(PathBuf, bool)>,
    /// `UnsetEnvironment=`: names, or exact assignments.
    pub(crate) unset: Vec<String>,
}

impl std::fmt::Debug for UnitEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> =
            self.environment.iter().map(|a| a.split_once('=').map_or(a.as_str(), |(n, _)| n)).collect();
        f.debug_struct("UnitEnvironment")
            .field("load_state", &self.load_state)
            .field("environment", &names)
            .field("files", &self.files)
            .field("unset", &self.unset)
            .finish()
    }
}

/// Parses `systemctl show`'s lines for the properties above (any order,
/// one line per environment file).
pub(crate) fn parse_show(text: &str) -> UnitEnvironment {
    let mut unit = UnitEnvironment::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        match key {
            "LoadState" => unit.load_state = Some(value.trim().to_owned()),
            "Environment" => unit.environment.extend(split_words(value)),
            "UnsetEnvironment" => unit.unset.extend(split_words(value)),
            "EnvironmentFiles" => {
                // `PATH (ignore_errors=yes)`.
                let (path, ignore) = match value.rsplit_once(" (ignore_errors=") {
                    Some((path, rest)) => (path, rest.starts_with("yes")),
                    None => (value, false),
                };
                if !path.is_empty() {
                    unit.files.push((PathBuf::from(path), ignore));
                }
            }
            _ => {}
        }
    }
    unit
}

/// A list property as `systemctl show` prints it: words separated by
/// spaces, a word with spaces or shell specials in double quotes (systemd's
/// `shell_maybe_quote`), `\` escaping the next character inside them.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        c => word.push(c),
                    }
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// `systemctl show-environment`'s lines, `NAME=VALUE`; newer systemd quotes
/// a value that needs it (`"..."`, or `$'...'` for control characters).
pub(crate) fn parse_manager_environment(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once('=')?;
            Some(format!("{name}={}", unquote_value(value)))
        })
        .collect()
}

fn unquote_value(value: &str) -> String {
    if let Some(inner) = value.strip_prefix("$'").and_then(|v| v.strip_suffix('\'')) {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('a') => out.push('\x07'),
                Some('b') => out.push('\x08'),
                Some('f') => out.push('\x0c'),
                Some('v') => out.push('\x0b'),
                Some('x') => {
                    let hex: String = chars.clone().take(2).collect();
                    match u8::from_str_radix(&hex, 16) {
                        Ok(b) => {
                            out.push(char::from(b));
                            chars.nth(1);
                        }
                        Err(_) => out.push_str("\\x"),
                    }
                }
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        }
        return out;
    }
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        let words = split_words(value);
        if words.len() == 1 {
            return words.into_iter().next().unwrap_or_default();
        }
    }
    value.to_owned()
}

/// An environment file's assignments, as systemd reads them, in order.
pub(crate) fn parse_env_file(text: &str) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        PreKey,
        Key,
        PreValue,
        Value,
        ValueEscape,
        SingleQuote,
        DoubleQuote,
        DoubleQuoteEscape,
        Comment,
        CommentEscape,
    }
    fn push(out: &mut Vec<String>, key: &str, key_end: Option<usize>, value: &str) {
        let key = &key[..key_end.unwrap_or(key.len())];
        out.push(format!("{key}={value}"));
    }
    /// Adds `c` to `text`, keeping `space_at` where its trailing white
    /// space starts.
    fn push_char(text: &mut String, space_at: &mut Option<usize>, c: char, space: bool) {
        if !space {
            *space_at = None;
        } else if space_at.is_none() {
            *space_at = Some(text.len());
        }
        text.push(c);
    }
    let mut out = Vec::new();
    let mut state = State::PreKey;
    let (mut key, mut value) = (String::new(), String::new());
    // Where trailing whitespace of the key and of an unquoted value starts.
    let (mut key_space, mut value_space): (Option<usize>, Option<usize>) = (None, None);
    for c in text.chars() {
        let newline = c == '\n' || c == '\r';
        let space = c == ' ' || c == '\t' || newline;
        state = match state {
            State::PreKey if c == '#' || c == ';' => State::Comment,
            State::PreKey if space => State::PreKey,
            State::PreKey => {
                key.clear();
                key.push(c);
                key_space = None;
                State::Key
            }
            State::Key if newline => State::PreKey,
            State::Key if c == '=' => {
                value.clear();
                value_space = None;
                State::PreValue
            }
            State::Key => {
                push_char(&mut key, &mut key_space, c, space);
                State::Key
            }
            State::PreValue if newline => {
                push(&mut out, &key, key_space, &value);
                State::PreKey
            }
            State::PreValue if c == '\'' => State::SingleQuote,
            State::PreValue if c == '"' => State::DoubleQuote,
            State::PreValue if c == '\\' => State::ValueEscape,
            State::PreValue if space => State::PreValue,
            State::PreValue => {
                value.push(c);
                State::Value
            }
            State::Value if newline => {
                let end = value_space.unwrap_or(value.len());
                push(&mut out, &key, key_space, &value[..end]);
                State::PreKey
            }
            State::Value if c == '\\' => {
                value_space = None;
                State::ValueEscape
            }
            State::Value => {
                push_char(&mut value, &mut value_space, c, space);
                State::Value
            }
            State::ValueEscape => {
                // An escaped newline is a continuation line.
                if !newline {
                    value.push(c);
                }
                State::Value
            }
            State::SingleQuote if c == '\'' => State::PreValue,
            State::SingleQuote => {
                value.push(c);
                State::SingleQuote
            }
            State::DoubleQuote if c == '"' => State::PreValue,
            State::DoubleQuote if c == '\\' => State::DoubleQuoteEscape,
            State::DoubleQuote => {
                value.push(c);
                State::DoubleQuote
            }
            State::DoubleQuoteEscape => {
                if matches!(c, '"' | '\\' | '`' | '$') {
                    value.push(c);
                } else if c != '\n' {
                    value.push('\\');
                    value.push(c);
                }
                State::DoubleQuote
            }
            State::Comment if c == '\\' => State::CommentEscape,
            State::Comment if newline => State::PreKey,
            State::Comment => State::Comment,
            // Since systemd 254 a backslash ending a comment no longer
            // continues it.
            State::CommentEscape if newline => State::PreKey,
            State::CommentEscape => State::Comment,
        };
    }
    match state {
        State::Value => {
            let end = value_space.unwrap_or(value.len());
            push(&mut out, &key, key_space, &value[..end]);
        }
        State::PreValue | State::ValueEscape | State::SingleQuote | State::DoubleQuote | State::DoubleQuoteEscape => {
            push(&mut out, &key, key_space, &value);
        }
        _ => {}
    }
    out
}

/// The environment a loaded unit's processes start with, from the unit's
/// properties and `systemctl show-environment`'s output; its environment
/// files are read here (a missing one is skipped when its path had `-`).
pub(crate) fn environment(unit: &UnitEnvironment, manager: &str) -> Result<Vec<(String, String)>, String> {
    let mut files = Vec::new();
    for (path, ignore_errors) in &unit.files {
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", path.display()))?;
                files.extend(parse_env_file(&text));
            }
            Err(e) if *ignore_errors && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
    }
    Ok(merge(&[&parse_manager_environment(manager), &unit.environment, &files], &unit.unset))
}

/// Whether `name` is a name systemd passes on: letters, digits and `_`,
/// not starting with a digit.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The environment from its sources in systemd's order: each assignment
/// replaces an earlier one of its name in place; `unset` then removes a
/// name (`NAME`) or an exact assignment (`NAME=VALUE`).
pub(crate) fn merge(sources: &[&[String]], unset: &[String]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    for source in sources {
        for assignment in *source {
            let Some((name, value)) = assignment.split_once('=') else { continue };
            if !valid_name(name) {
                continue;
            }
            match env.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = value.to_owned(),
                None => env.push((name.to_owned(), value.to_owned())),
            }
        }
    }
    env.retain(|(name, value)| {
        !unset.iter().any(|u| match u.split_once('=') {
            Some((n, v)) => n == name && v == value,
            None => u == name,
        })
    });
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn show_output() {
        let text = "LoadState=loaded\nEnvironment=http_proxy=http://p:3128 \"NOTE=two words\" \"Q=a\\\"b\"\n\
                    EnvironmentFiles=/etc/default/watcher (ignore_errors=yes)\n\
                    EnvironmentFiles=/etc/with space/env (ignore_errors=no)\nUnsetEnvironment=FTP_PROXY\n";
        let unit = parse_show(text);
        assert_eq!(unit.load_state.as_deref(), Some("loaded"));
        assert_eq!(unit.environment, strings(&["http_proxy=http://p:3128", "NOTE=two words", "Q=a\"b"]));
        assert_eq!(
            unit.files,
            [(PathBuf::from("/etc/default/watcher"), true), (PathBuf::from("/etc/with space/env"), false)]
        );
        assert_eq!(unit.unset, strings(&["FTP_PROXY"]));
        assert_eq!(parse_show("LoadState=not-found\nEnvironment=\n").environment, Vec::<String>::new());
        let debug = format!("{:?}", parse_show("Environment=http_proxy=http://u:pw@p:3128 OS_PASSWORD=pw\n"));
        assert!(debug.contains("\"http_proxy\", \"OS_PASSWORD\"") && !debug.contains("pw"), "{debug}");
    }

    #[test]
    fn manager_environment() {
        let text = "LANG=C.UTF-8\nPATH=/usr/bin\nhttp_proxy=http://p:3128\nX=\"a b\"\nY=$'a\\nb'\n";
        assert_eq!(
            parse_manager_environment(text),
            strings(&["LANG=C.UTF-8", "PATH=/usr/bin", "http_proxy=http://p:3128", "X=a b", "Y=a\nb"])
        );
    }

    #[test]
    fn environment_files_as_systemd_reads_them() {
        let text = "# a comment\n; another\n  http_proxy = http://p:3128  \nexport NO=1\nA='single  quoted'\n\
                    B=\"double \\\"q\\\" \\n kept\"\nC=one\\\ntwo\nD=\nnot an assignment\nE=x # not a comment\n\
                    F=\"a\"'b'c\nG=last";
        assert_eq!(
            parse_env_file(text),
            strings(&[
                "http_proxy=http://p:3128",
                "export NO=1",
                "A=single  quoted",
                "B=double \"q\" \\n kept",
                "C=onetwo",
                "D=",
                "E=x # not a comment",
                "F=abc",
                "G=last",
            ])
        );
    }

    #[test]
    fn merged_in_systemd_order() {
        let manager = strings(&["PATH=/usr/bin", "http_proxy=http://manager:1", "no_proxy=a"]);
        let unit = strings(&["http_proxy=http://unit:2", "9BAD=x", "export NO=1"]);
        let file = strings(&["no_proxy=b", "HTTPS_PROXY=http://file:3"]);
        let env = merge(&[&manager, &unit, &file], &strings(&["PATH", "HTTPS_PROXY=other"]));
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("http_proxy", "http://unit:2"), ("no_proxy", "b"), ("HTTPS_PROXY", "http://file:3")]);
    }
}
