//! The managed-sections merge: replace `[maas_client]` and `[ironic_client]`
//! inside an existing watcher.conf and leave every other byte alone.
//!
//! Lines are classified the way oslo.config's parser reads them (after
//! trailing whitespace is stripped): empty is blank, a leading space or tab
//! continues the previous value, `#` or `;` starts a comment, `[` ... `]` is
//! a section header, anything else is an option. Section names compare as
//! oslo.config compares them: `DEFAULT` exactly, others case-insensitively.

use std::collections::HashMap;

/// One section to keep in the file: `body` is its rendered text (header
/// included, `\n` line endings), or `None` to remove the section.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ManagedSection<'a> {
    pub(crate) name: &'a str,
    pub(crate) body: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind<'a> {
    Blank,
    Comment,
    Continuation,
    Header(&'a str),
    Option,
}

fn classify(line: &str) -> LineKind<'_> {
    let line = line.trim_end();
    match line.as_bytes().first() {
        None => LineKind::Blank,
        Some(b' ' | b'\t') => LineKind::Continuation,
        Some(b'#' | b';') => LineKind::Comment,
        Some(b'[') if line.len() > 2 && line.ends_with(']') => LineKind::Header(&line[1..line.len() - 1]),
        _ => LineKind::Option,
    }
}

/// The name oslo.config files a section under.
pub(crate) fn normalise_section(name: &str) -> String {
    if name == "DEFAULT" {
        name.to_owned()
    } else {
        name.to_lowercase()
    }
}

/// The line ending a file mostly uses: `\r\n` when any line has one.
fn line_ending(text: &str) -> &'static str {
    if text.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    }
}

/// A section's span in the file: `start..owned_end` is the header and its
/// options (what the merge replaces). The blank and comment lines after the
/// last option usually belong to the next section and are kept;
/// `owned_end..trailing_blank_end` are the blank lines right after it.
struct Span {
    name: String,
    start: usize,
    owned_end: usize,
    trailing_blank_end: usize,
}

fn sections(lines: &[&str]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match classify(line) {
            LineKind::Header(name) => {
                spans.push(Span {
                    name: normalise_section(name),
                    start: i,
                    owned_end: i + 1,
                    trailing_blank_end: i + 1,
                });
            }
            kind => {
                if let Some(span) = spans.last_mut() {
                    match kind {
                        LineKind::Option | LineKind::Continuation => {
                            span.owned_end = i + 1;
                            span.trailing_blank_end = i + 1;
                        }
                        LineKind::Blank if span.trailing_blank_end == i => span.trailing_blank_end = i + 1,
                        _ => {}
                    }
                }
            }
        }
    }
    spans
}

/// Merges `managed` into `existing`. Each managed section replaces the first
/// section of that name (its header and options; comments and blank lines
/// after its last option stay); later duplicates are removed, since
/// oslo.config would let them override ours. A section not in the file is
/// appended. The result uses the file's line ending.
pub(crate) fn merge(existing: &str, managed: &[ManagedSection<'_>]) -> String {
    let eol = line_ending(existing);
    let lines: Vec<&str> = existing.split_inclusive('\n').collect();
    let spans = sections(&lines);

    // What replaces each line range: (start, end, replacement).
    let mut edits: Vec<(usize, usize, Option<String>)> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for section in managed {
        let wanted = normalise_section(section.name);
        let rendered = section.body.map(|body| with_line_ending(body, eol));
        let mut first = true;
        for span in spans.iter().filter(|s| s.name == wanted) {
            if first && rendered.is_some() {
                edits.push((span.start, span.owned_end, rendered.clone()));
            } else {
                // Removing: take the blank lines that follow too, so no gap is left.
                edits.push((span.start, span.trailing_blank_end.max(span.owned_end), None));
            }
            first = false;
        }
        if first {
            if let Some(text) = rendered {
                missing.push(text);
            }
        }
    }
    edits.sort_by_key(|(start, _, _)| *start);

    let mut out = String::with_capacity(existing.len() + 256);
    let mut i = 0;
    for (start, end, replacement) in edits {
        for line in &lines[i..start] {
            out.push_str(line);
        }
        if let Some(text) = replacement {
            out.push_str(&text);
        }
        i = end;
    }
    for line in &lines[i..] {
        out.push_str(line);
    }
    for text in missing {
        if !out.is_empty() {
            if !out.ends_with('\n') {
                out.push_str(eol);
            }
            if !out.ends_with(&format!("{eol}{eol}")) && out != eol {
                out.push_str(eol);
            }
        }
        out.push_str(&text);
    }
    out
}

/// The comment line that starts every section watcher-metal renders.
const MARKER: &str = "# Managed by watcher-metal";

/// Removes the sections named in `names` that carry watcher-metal's
/// [`MARKER`] comment (the sections an earlier merge wrote), with the blank
/// lines right after them. Sections of those names without the marker, and
/// every other byte, stay.
pub(crate) fn remove_marked_sections(existing: &str, names: &[&str]) -> String {
    let lines: Vec<&str> = existing.split_inclusive('\n').collect();
    let wanted: Vec<String> = names.iter().map(|n| normalise_section(n)).collect();
    let spans = sections(&lines);
    let is_marker = |line: &str| line.trim_end().starts_with(MARKER);
    let mut out = String::with_capacity(existing.len());
    let mut i = 0;
    for (n, span) in spans.iter().enumerate() {
        if !wanted.contains(&span.name) {
            continue;
        }
        let next_header = spans.get(n + 1).map_or(lines.len(), |s| s.start);
        if !lines[span.start + 1..next_header].iter().any(|l| is_marker(l)) {
            continue;
        }
        // The header, its options and the marker; then the blank lines after.
        let mut end = span.owned_end;
        for (at, line) in lines.iter().enumerate().take(next_header).skip(span.start + 1) {
            if is_marker(line) {
                end = end.max(at + 1);
            }
        }
        while end < next_header && classify(lines[end]) == LineKind::Blank {
            end += 1;
        }
        for line in &lines[i..span.start] {
            out.push_str(line);
        }
        i = end;
    }
    let removed_to_end = i == lines.len() && i > 0 && !out.is_empty();
    for line in &lines[i..] {
        out.push_str(line);
    }
    // A merge appends its sections after one blank line: take that too.
    if removed_to_end {
        let eol = line_ending(existing);
        if out.ends_with(&format!("{eol}{eol}")) {
            out.truncate(out.len() - eol.len());
        }
    }
    out
}

/// `text` with every line ending `eol`, and a final line ending.
fn with_line_ending(text: &str, eol: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.lines() {
        out.push_str(line);
        out.push_str(eol);
    }
    out
}

/// The options of `section` as oslo.config reads them from one file, in
/// file order (a key may repeat; the last setting wins): lines split at
/// `\n`, `\r\n` or `\r` (Python's universal newlines), values stripped of
/// whitespace and of one pair of matching outer quotes, indented lines
/// continuing a value (a blank line ends it), then oslo.config's
/// substitution: `\$` and `$$` are `$`, and `$name` or `${name}` is the value
/// of option `name` of the same section (`$group.name`: of another section;
/// then of `[DEFAULT]`, also when the option found names one the file does
/// not set, as oslo.config falls back) in this file, each option resolved
/// once. A reference to an option the file does not set is left as
/// written (oslo.config would take that option's default, or fail). A value
/// whose references loop, nest deeper than [`MAX_DEPTH`] or expand past
/// [`MAX_EXPANDED`] bytes is left as written: [`check_substitutions`] says
/// which (and reading a layout from disk refuses such a file).
pub fn read_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut resolver = Resolver::new(text);
    let section = normalise_section(section);
    let raw = resolver.sections.get(&section).cloned().unwrap_or_default();
    raw.into_iter()
        .map(|(key, value)| {
            let resolved = resolver.substitute(&section, &key, &value, 0).map_or_else(|_| value.clone(), |r| r.value);
            (key, resolved)
        })
        .collect()
}

/// How deep `$` references may nest (oslo.config stops at about 120, with
/// Python's `RecursionError`).
pub const MAX_DEPTH: usize = 100;

/// How long a value may grow through `$` references, in bytes.
pub const MAX_EXPANDED: usize = 64 * 1024;

/// How many bytes all the values of one file may expand to together.
const MAX_EXPANDED_TOTAL: usize = 16 * 1024 * 1024;

/// Why the `$` references of a file cannot be resolved. Names options
/// only, never values (which may be secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstitutionError {
    /// An option refers to itself, directly or through others.
    #[error("`$` references loop: {}", chain(options))]
    Cycle {
        /// The options in the loop, (section, key), the first one again
        /// at the end.
        options: Vec<(String, String)>,
    },
    /// References nest deeper than [`MAX_DEPTH`].
    #[error("`$` references in [{section}] {option} nest more than {MAX_DEPTH} deep")]
    TooDeep {
        /// The section of the option whose value was read.
        section: String,
        /// That option.
        option: String,
    },
    /// A value grows past [`MAX_EXPANDED`] bytes.
    #[error("[{section}] {option} expands to more than {MAX_EXPANDED} bytes through `$` references")]
    TooLong {
        /// The section of the option whose value was read.
        section: String,
        /// That option.
        option: String,
    },
}

/// `[s] a -> [s] b -> [s] a`.
fn chain(options: &[(String, String)]) -> String {
    options.iter().map(|(section, key)| format!("[{section}] {key}")).collect::<Vec<_>>().join(" -> ")
}

impl SubstitutionError {
    /// One line telling the user what to do about it.
    pub fn hint(&self) -> String {
        match self {
            SubstitutionError::Cycle { .. } => {
                "break the loop, or write `$$` for a literal `$`: oslo.config fails on it (RecursionError)".to_owned()
            }
            SubstitutionError::TooDeep { .. } => {
                "write the value out instead of chaining references: oslo.config fails on it (RecursionError)".to_owned()
            }
            SubstitutionError::TooLong { .. } => {
                "write the value out, or write `$$` for a literal `$`: references that repeat references grow the value exponentially".to_owned()
            }
        }
    }
}

/// Resolves every `$` reference in every option of `text`, as
/// oslo.config would on reading each of them.
pub fn check_substitutions(text: &str) -> Result<(), SubstitutionError> {
    check_counting(text).0
}

/// [`check_substitutions`], and how many references it resolved (each
/// option once, however often it is referred to).
fn check_counting(text: &str) -> (Result<(), SubstitutionError>, usize) {
    let mut resolver = Resolver::new(text);
    let mut sections: Vec<(String, Vec<(String, String)>)> =
        resolver.sections.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    sections.sort();
    for (section, options) in sections {
        // oslo.config reads an option's last setting only.
        let last: HashMap<&str, usize> = options.iter().enumerate().map(|(i, (k, _))| (k.as_str(), i)).collect();
        for (i, (key, value)) in options.iter().enumerate() {
            if last.get(key.as_str()) != Some(&i) {
                continue;
            }
            if let Err(e) = resolver.resolve_option((section.clone(), key.clone()), value, 0) {
                return (Err(e), resolver.resolutions);
            }
        }
    }
    (Ok(()), resolver.resolutions)
}

/// Python's `str.isspace` (Rust's `char::is_whitespace`, and the
/// separators U+001C..U+001F).
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Every section's options before substitution (by normalised section
/// name), as oslo.config's parser (`oslo_config.iniparser`) collects them.
/// Lines it would refuse (a continuation with nothing to continue, a line
/// with no `=` or `:`) are skipped.
fn raw_sections(text: &str) -> HashMap<String, Vec<(String, String)>> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut current: Option<String> = None;
    // Whether the last line was an option (or its continuation).
    let mut continuing = false;
    for line in text.split("\r\n").flat_map(|l| l.split(['\r', '\n'])) {
        let line = line.trim_end_matches(py_space);
        if line.is_empty() {
            continuing = false;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if continuing {
                if let Some((_, value)) = current.as_ref().and_then(|s| out.get_mut(s)).and_then(|o| o.last_mut()) {
                    value.push('\n');
                    value.push_str(line.trim_start_matches(py_space));
                }
            }
            continue;
        }
        continuing = false;
        if let Some(rest) = line.strip_prefix('[') {
            if line.len() > 2 && rest.ends_with(']') {
                current = Some(normalise_section(&rest[..rest.len() - 1]));
            }
        } else if line.starts_with(['#', ';']) {
        } else if let Some((key, _, value)) = split_option(line) {
            let key = key.trim_matches(py_space);
            if let Some(section) = current.as_ref().filter(|_| !key.is_empty()) {
                out.entry(section.clone()).or_default().push((key.to_owned(), oslo_unquote(value)));
                continuing = true;
            }
        }
    }
    out
}

fn oslo_unquote(value: &str) -> String {
    let value = value.trim_matches(py_space);
    let mut chars = value.chars();
    match (chars.next(), chars.next_back()) {
        (Some(first @ ('"' | '\'')), Some(last)) if first == last => value[1..value.len() - 1].to_owned(),
        // A lone quote is its own first and last character: oslo.config
        // reads it as empty.
        (Some('"' | '\''), None) => String::new(),
        _ => value.to_owned(),
    }
}

/// Characters of oslo.config's template names, `[_a-z][._a-z0-9]*` matched
/// case-insensitively as Python's `re` does (which lets in the Turkish
/// dotted I and dotless i, the long s and the Kelvin sign).
fn id_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || matches!(c, '\u{130}' | '\u{131}' | '\u{17f}' | '\u{212a}')
}

fn id_char(c: char) -> bool {
    id_start(c) || c == '.' || c.is_ascii_digit()
}

fn is_id(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(id_start) && chars.all(id_char)
}

/// A value with its references resolved.
#[derive(Debug, Clone)]
struct Resolved {
    value: String,
    /// Whether it names, itself or through others, an option the file does
    /// not set (left as written; oslo.config would raise `NoSuchOptError`
    /// unless the option is registered).
    missing: bool,
}

/// oslo.config's substitution over one file, memoised: each option a
/// reference names is resolved once, however often it is named.
struct Resolver {
    sections: HashMap<String, Vec<(String, String)>>,
    /// Resolved options by (section, key).
    done: HashMap<(String, String), Resolved>,
    /// The options being resolved, outermost first: naming one again is a
    /// loop.
    stack: Vec<(String, String)>,
    /// Bytes held in `done`.
    held: usize,
    /// How many options were resolved.
    resolutions: usize,
}

impl Resolver {
    fn new(text: &str) -> Resolver {
        Resolver { sections: raw_sections(text), done: HashMap::new(), stack: Vec::new(), held: 0, resolutions: 0 }
    }

    /// oslo.config's `ConfigOpts._substitute` on `value`, which option
    /// `key` of `section` is set to.
    fn substitute(
        &mut self,
        section: &str,
        key: &str,
        value: &str,
        depth: usize,
    ) -> Result<Resolved, SubstitutionError> {
        let too_long = || SubstitutionError::TooLong { section: section.to_owned(), option: key.to_owned() };
        let value = value.replace("\\$", "$$");
        let mut out = String::with_capacity(value.len());
        let mut missing = false;
        let mut rest = value.as_str();
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
                continue;
            }
            let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) if is_id(&braced[..end]) => (&braced[..end], &braced[end + 1..]),
                    _ => ("", after),
                }
            } else {
                let end = after.char_indices().find(|&(i, c)| if i == 0 { !id_start(c) } else { !id_char(c) });
                let end = end.map_or(after.len(), |(i, _)| i);
                (&after[..end], &after[end..])
            };
            if name.is_empty() {
                // Not a placeholder: the `$` stays.
                out.push('$');
                rest = after;
                continue;
            }
            match self.resolve(section, name, depth)? {
                Some(resolved) => {
                    out.push_str(&resolved.value);
                    missing |= resolved.missing;
                }
                None => {
                    out.push_str(&rest[at..rest.len() - tail.len()]);
                    missing = true;
                }
            }
            if out.len() > MAX_EXPANDED {
                return Err(too_long());
            }
            rest = tail;
            if missing {
                // oslo.config raises NoSuchOptError here and reads no further
                // reference of this value (so a loop after it is never met).
                break;
            }
        }
        out.push_str(rest);
        if out.len() > MAX_EXPANDED {
            return Err(too_long());
        }
        Ok(Resolved { value: out, missing })
    }

    /// The value of option `name` (or `group.name`) as seen from
    /// `section`; `None` when the file does not set it.
    fn resolve(&mut self, section: &str, name: &str, depth: usize) -> Result<Option<Resolved>, SubstitutionError> {
        // As oslo.config's StrSubWrapper: `group.name` or `name` of this
        // section first, then the whole name in [DEFAULT].
        let lookup = |sections: &HashMap<String, Vec<(String, String)>>, group: &str, key: &str| {
            let group = normalise_section(group);
            let value = crate::clients::last_setting(sections.get(&group)?, key)?.clone();
            Some((group, key.to_owned(), value))
        };
        let first = match name.split_once('.') {
            Some((group, option)) => lookup(&self.sections, group, option),
            None => lookup(&self.sections, section, name),
        };
        let fallback = lookup(&self.sections, "DEFAULT", name);
        let Some((group, option, raw)) = first else {
            let Some((group, option, raw)) = fallback else { return Ok(None) };
            return self.resolve_option((group, option), &raw, depth).map(Some);
        };
        let found = self.resolve_option((group, option), &raw, depth)?;
        // A NoSuchOptError inside it sends oslo.config to [DEFAULT] too.
        if let Some((group, option, raw)) = fallback.filter(|_| found.missing) {
            let default = self.resolve_option((group, option), &raw, depth)?;
            if !default.missing {
                return Ok(Some(default));
            }
        }
        Ok(Some(found))
    }

    /// The value of option `id` (section, key), set to `raw`.
    fn resolve_option(&mut self, id: (String, String), raw: &str, depth: usize) -> Result<Resolved, SubstitutionError> {
        if let Some(done) = self.done.get(&id) {
            return Ok(done.clone());
        }
        if let Some(at) = self.stack.iter().position(|s| *s == id) {
            let options = self.stack[at..].iter().chain([&id]).cloned().collect();
            return Err(SubstitutionError::Cycle { options });
        }
        if depth >= MAX_DEPTH {
            return Err(SubstitutionError::TooDeep { section: id.0, option: id.1 });
        }
        self.stack.push(id.clone());
        let resolved = self.substitute(&id.0, &id.1, raw, depth + 1);
        self.stack.pop();
        let resolved = resolved?;
        self.resolutions += 1;
        self.held += resolved.value.len();
        if self.held > MAX_EXPANDED_TOTAL {
            return Err(SubstitutionError::TooLong { section: id.0, option: id.1 });
        }
        self.done.insert(id, resolved.clone());
        Ok(resolved)
    }
}

/// Option names whose values are secret: their values are masked in diffs.
fn is_secret_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "api_key", "token", "passwd"].iter().any(|s| key.contains(s))
}

/// Masks the values of secret options (with their continuation lines), and
/// the password part of URLs with credentials (`transport_url`,
/// `connection`), for showing a file to a person.
pub fn mask_secret_values(text: &str) -> String {
    let lines: Vec<(&str, &str)> = text.split_inclusive('\n').map(split_line_ending).collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < lines.len() {
        let (content, ending) = lines[i];
        let option = match classify(content) {
            LineKind::Option => split_option(content),
            _ => None,
        };
        let Some((key, sep, value)) = option else {
            out.push_str(content);
            out.push_str(ending);
            i += 1;
            continue;
        };
        // oslo.config reads the indented lines that follow as more of the value.
        let mut end = i + 1;
        while end < lines.len() && classify(lines[end].0) == LineKind::Continuation {
            end += 1;
        }
        let continuation = &lines[i + 1..end];
        out.push_str(key);
        out.push_str(sep);
        if is_secret_option(key.trim()) {
            if value.trim().is_empty() {
                out.push_str(value);
            } else {
                out.push(' ');
                out.push_str(crate::secret::REDACTED);
            }
            out.push_str(ending);
            for (line, line_ending) in continuation {
                let indent = line.len() - line.trim_start().len();
                out.push_str(&line[..indent]);
                out.push_str(crate::secret::REDACTED);
                out.push_str(line_ending);
            }
        } else {
            // A URL's credentials can run onto the continuation lines: mask
            // the value as oslo.config joins it.
            let mut joined = value.to_owned();
            let mut last_ending = ending;
            for (line, line_ending) in continuation {
                joined.push_str(last_ending);
                joined.push_str(line);
                last_ending = line_ending;
            }
            out.push_str(&mask_url_password(&joined));
            out.push_str(last_ending);
        }
        i = end;
    }
    out
}

/// A line without its `\n` or `\r\n`, and that ending.
fn split_line_ending(line: &str) -> (&str, &str) {
    match line.strip_suffix("\r\n") {
        Some(c) => (c, "\r\n"),
        None => match line.strip_suffix('\n') {
            Some(c) => (c, "\n"),
            None => (line, ""),
        },
    }
}

/// Splits `key = value` (or `key: value`) as oslo.config does: at the first
/// `=` or `:`, whichever comes first.
fn split_option(line: &str) -> Option<(&str, &str, &str)> {
    let at = line.find(['=', ':'])?;
    Some((&line[..at], &line[at..at + 1], &line[at + 1..]))
}

/// `scheme://user:password@host` becomes `scheme://user:<redacted>@host`.
/// The password is everything from the first `:` after `scheme://` to the
/// last `@` of the value, so no character in it (`@`, `/`, `#`, `:`, `,`,
/// spaces) can end it early; the price is that a multi-host URL
/// (`rabbit://u:p@h1,u:p@h2/`) shows only its last host, and an `@` later
/// in a path masks the host too.
fn mask_url_password(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else { return value.to_owned() };
    let start = scheme_end + 3;
    let rest = &value[start..];
    let Some(at) = rest.rfind('@') else { return value.to_owned() };
    let Some(colon) = rest[..at].find(':') else { return value.to_owned() };
    format!("{}{}{}", &value[..start + colon + 1], crate::secret::REDACTED, &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAAS: &str = "[maas_client]\nurl = http://m/MAAS\napi_key = a:b:c\ntimeout = 60\n";
    const IRONIC: &str = "[ironic_client]\napi_version = 1\nendpoint_type = publicURL\n";

    fn both<'a>(maas: Option<&'a str>) -> Vec<ManagedSection<'a>> {
        vec![
            ManagedSection { name: "maas_client", body: maas },
            ManagedSection { name: "ironic_client", body: Some(IRONIC) },
        ]
    }

    #[test]
    fn only_marked_sections_are_removed() {
        let existing = "[DEFAULT]\ndebug = true\n\n[maas_client]\n# Managed by watcher-metal from the charm config; local edits are replaced.\nurl = http://m/MAAS\n\n[ironic_client]\nregion_name = mine\n\n[MAAS_CLIENT]\n# Managed by watcher-metal x\n\n[database]\nconnection = x\n";
        assert_eq!(
            remove_marked_sections(existing, &["maas_client", "ironic_client"]),
            "[DEFAULT]\ndebug = true\n\n[ironic_client]\nregion_name = mine\n\n[database]\nconnection = x\n"
        );
        let untouched = "[maas_client]\nurl = theirs\n";
        assert_eq!(remove_marked_sections(untouched, &["maas_client"]), untouched);
    }

    #[test]
    fn appends_missing_sections_after_a_blank_line() {
        let existing = "[DEFAULT]\ndebug = true\n";
        let merged = merge(existing, &both(Some(MAAS)));
        assert_eq!(merged, format!("[DEFAULT]\ndebug = true\n\n{MAAS}\n{IRONIC}"));
    }

    #[test]
    fn empty_file_gets_just_the_sections() {
        assert_eq!(merge("", &both(Some(MAAS))), format!("{MAAS}\n{IRONIC}"));
    }

    #[test]
    fn replaces_in_place_keeping_comments_and_order() {
        let existing = "# top comment\n[DEFAULT]\ndebug = true\n\n[maas_client]\n# old\nurl = http://old/MAAS\napi_key = x:y:z\n\n# about database\n[database]\nconnection = sqlite://\n";
        let merged = merge(existing, &both(Some(MAAS)));
        assert_eq!(
            merged,
            format!("# top comment\n[DEFAULT]\ndebug = true\n\n{MAAS}\n# about database\n[database]\nconnection = sqlite://\n\n{IRONIC}")
        );
    }

    #[test]
    fn removes_maas_section_when_unconfigured() {
        let existing =
            "[DEFAULT]\ndebug = true\n\n[maas_client]\nurl = http://old/MAAS\n\n[database]\nconnection = x\n";
        let merged = merge(existing, &both(None));
        assert_eq!(merged, format!("[DEFAULT]\ndebug = true\n\n[database]\nconnection = x\n\n{IRONIC}"));
    }

    #[test]
    fn duplicate_sections_collapse_into_one() {
        let existing = "[maas_client]\nurl = a\n\n[DEFAULT]\nx = 1\n\n[MAAS_Client]\ntimeout = 5\n\n[ironic_client]\napi_version = 1\n";
        let merged = merge(existing, &both(Some(MAAS)));
        assert_eq!(merged, format!("{MAAS}\n[DEFAULT]\nx = 1\n\n{IRONIC}"));
    }

    #[test]
    fn duplicate_keys_inside_the_section_are_replaced() {
        let existing = "[maas_client]\nurl = a\nurl = b\napi_key = k\n";
        assert_eq!(merge(existing, &both(Some(MAAS))), format!("{MAAS}\n{IRONIC}"));
    }

    #[test]
    fn missing_trailing_newline() {
        let merged = merge("[DEFAULT]\ndebug = true", &both(Some(MAAS)));
        assert_eq!(merged, format!("[DEFAULT]\ndebug = true\n\n{MAAS}\n{IRONIC}"));
        let merged = merge("[maas_client]\nurl = old", &both(Some(MAAS)));
        assert_eq!(merged, format!("{MAAS}\n{IRONIC}"));
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let existing =
            "[DEFAULT]\r\ndebug = true\r\n\r\n[maas_client]\r\nurl = old\r\n\r\n[database]\r\nconnection = x\r\n";
        let merged = merge(existing, &both(Some(MAAS)));
        assert_eq!(
            merged,
            format!(
                "[DEFAULT]\r\ndebug = true\r\n\r\n{}\r\n[database]\r\nconnection = x\r\n\r\n{}",
                MAAS.replace('\n', "\r\n"),
                IRONIC.replace('\n', "\r\n")
            )
        );
        assert_eq!(merge(&merged, &both(Some(MAAS))), merged);
    }

    #[test]
    fn continuation_lines_belong_to_the_section() {
        let existing = "[maas_client]\nurl = a\n  continued\n[DEFAULT]\n";
        assert_eq!(merge(existing, &both(Some(MAAS))), format!("{MAAS}[DEFAULT]\n\n{IRONIC}"));
    }

    #[test]
    fn indented_headers_are_not_headers() {
        // oslo.config reads an indented line as a continuation, not a section.
        let existing = "[DEFAULT]\nx = 1\n  [maas_client]\n";
        let merged = merge(existing, &both(Some(MAAS)));
        assert!(merged.starts_with("[DEFAULT]\nx = 1\n  [maas_client]\n\n[maas_client]\n"));
    }

    #[test]
    fn merge_is_idempotent_on_examples() {
        for existing in ["", "[DEFAULT]\n", "[maas_client]\nurl=a", "x\r\n[y]\r\n", "#c\n\n\n[DEFAULT]\n\n\n"] {
            let once = merge(existing, &both(Some(MAAS)));
            assert_eq!(merge(&once, &both(Some(MAAS))), once, "{existing:?}");
            let removed = merge(&once, &both(None));
            assert_eq!(merge(&removed, &both(None)), removed);
            assert!(!removed.contains("[maas_client]"));
        }
    }

    #[test]
    fn reads_sections_as_oslo_config_does() {
        let text = "[DEFAULT]\nurl = no\n[MAAS_client]\nurl = \"http://m/MAAS\" \napi_key=a$$b\ntimeout: 30\n#x = 1\nlong = a\n  b\n[maas_client]\ntimeout = 40\n";
        assert_eq!(
            read_section(text, "maas_client"),
            vec![
                ("url".to_owned(), "http://m/MAAS".to_owned()),
                ("api_key".to_owned(), "a$b".to_owned()),
                ("timeout".to_owned(), "30".to_owned()),
                ("long".to_owned(), "a\nb".to_owned()),
                ("timeout".to_owned(), "40".to_owned()),
            ]
        );
        assert!(read_section(text, "ironic_client").is_empty());
    }

    #[test]
    fn reads_quotes_dollars_and_references_as_oslo_config_does() {
        // Each held against oslo.config in tests/oslo_roundtrip.rs.
        let text = "[s]\na = \"\nb = '\nc = \"  two  spaces  \"  \nd = x\\$y$$z$\ne = ${a}-$s.c\nf = $1 ${ $\rg = last\r\n[t]\nc = T\n";
        let got = read_section(text, "s");
        let want = [
            ("a", ""),
            ("b", ""),
            ("c", "  two  spaces  "),
            ("d", "x$y$z$"),
            ("e", "-  two  spaces  "),
            ("f", "$1 ${ $"),
            ("g", "last"),
        ];
        let want: Vec<(String, String)> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(got, want);
        // Unknown references stay as written.
        assert_eq!(read_section("[s]\na = $nope ${t.x}\n", "s"), vec![("a".into(), "$nope ${t.x}".into())]);
        // A reference to itself is a loop: left as written, and reported.
        assert_eq!(read_section("[s]\na = <$a>\n", "s"), vec![("a".into(), "<$a>".into())]);
        assert_eq!(
            check_substitutions("[s]\na = <$a>\n"),
            Err(SubstitutionError::Cycle { options: vec![("s".into(), "a".into()), ("s".into(), "a".into())] })
        );
    }

    /// `a = $b$b$b`, `b = $c$c$c`, ...: each level triples the value.
    fn nested(levels: usize) -> String {
        let names: Vec<char> = ('a'..='z').take(levels + 1).collect();
        let mut text = String::from("[s]\n");
        for pair in names.windows(2) {
            text.push_str(&format!("{} = ${}${}${}\n", pair[0], pair[1], pair[1], pair[1]));
        }
        text.push_str(&format!("{} = x\n", names[levels]));
        text
    }

    #[test]
    fn nested_references_resolve_each_option_once() {
        // 3^7 bytes: resolved, each option once (it took 3^7 lookups before).
        let text = nested(7);
        let (result, resolutions) = check_counting(&text);
        assert_eq!(result, Ok(()));
        assert!(resolutions <= 8, "{resolutions} resolutions");
        assert_eq!(read_section(&text, "s")[0].1, "x".repeat(3usize.pow(7)));
        // A 300-byte file whose first option would be 3^20 bytes: refused
        // at the size cap, after a bounded number of resolutions.
        let text = nested(20);
        assert!(text.len() <= 300, "{}", text.len());
        let (result, resolutions) = check_counting(&text);
        assert!(matches!(result, Err(SubstitutionError::TooLong { .. })), "{result:?}");
        assert!(resolutions <= 21, "{resolutions} resolutions");
        let got = read_section(&text, "s");
        assert_eq!(got[0].1, "$b$b$b", "too long: left as written");
        assert_eq!(got[20].1, "x");
    }

    #[test]
    fn an_option_naming_a_missing_one_falls_back_to_default_as_in_oslo_config() {
        let text = "[DEFAULT]\nb = D\n[s]\nb = $nope\nc = <$b>\nd = <$e>\ne = $nope\n";
        let got = read_section(text, "s");
        assert_eq!(got[1], ("c".into(), "<D>".into()));
        assert_eq!(got[2], ("d".into(), "<$nope>".into()));
    }

    #[test]
    fn a_missing_reference_ends_the_value_before_a_loop_as_in_oslo_config() {
        // [t] a names a missing option before itself: oslo.config raises
        // NoSuchOptError there, never meets the loop, and [t] b falls back
        // to [DEFAULT] a.
        let text = "[DEFAULT]\na = \n[t]\nb = $a\na = $c$a\n";
        assert_eq!(check_substitutions(text), Ok(()));
        assert_eq!(read_section(text, "t"), vec![("b".to_owned(), String::new()), ("a".to_owned(), "$c$a".to_owned())]);
    }

    #[test]
    fn reference_loops_and_depth_are_reported() {
        let e = check_substitutions("[s]\na = $b\nb = ${t.c}\n[t]\nc = $s.a\n").unwrap_err();
        assert_eq!(e.to_string(), "`$` references loop: [s] a -> [s] b -> [t] c -> [s] a");
        // Only an option's last setting counts, as in oslo.config.
        assert_eq!(check_substitutions("[s]\na = $a\na = x\nb = $a\n"), Ok(()));
        let chain: String = (0..=MAX_DEPTH).map(|i| format!("o{i} = $o{}\n", i + 1)).collect();
        let deep = format!("[s]\n{chain}o{} = x\n", MAX_DEPTH + 1);
        assert!(matches!(check_substitutions(&deep), Err(SubstitutionError::TooDeep { .. })));
        let fine: String = (0..MAX_DEPTH - 1).map(|i| format!("o{i} = $o{}\n", i + 1)).collect();
        assert_eq!(check_substitutions(&format!("[s]\n{fine}o{} = x\n", MAX_DEPTH - 1)), Ok(()));
        for e in [check_substitutions("[s]\na = $a\n").unwrap_err(), check_substitutions(&nested(20)).unwrap_err()] {
            assert!(!e.to_string().contains('\n') && !e.hint().is_empty(), "{e}");
        }
    }

    #[test]
    fn masks_secret_values_and_url_passwords() {
        let text = "[database]\nconnection = mysql+pymysql://watcher:dbpass@10.0.0.1/watcher\r\n[maas_client]\napi_key = a:b:c\npassword=hunter2\n# password = commented\n[DEFAULT]\ntransport_url = rabbit://u:p1@h1:5672,u:p2@h2:5672/\nhost = x\n";
        let masked = mask_secret_values(text);
        for secret in ["dbpass", "a:b:c", "hunter2", "p1@", "p2@"] {
            assert!(!masked.contains(secret), "{secret} in {masked}");
        }
        assert!(masked.contains("connection = mysql+pymysql://watcher:<redacted>@10.0.0.1/watcher\r\n"));
        assert!(masked.contains("api_key = <redacted>\n"));
        assert!(masked.contains("password= <redacted>\n"));
        assert!(masked.contains("host = x\n"));
    }

    #[test]
    fn masks_passwords_with_any_character_and_continuation_lines() {
        let text = "[database]\nconnection = mysql+pymysql://watcher:pw#2x@db/watcher\n[DEFAULT]\ntransport_url = rabbit://watcher:pa/ss1@host:5672/\n[keystone_authtoken]\npassword = first-part\n    second-part\n\tthird-part\nusername = watcher\n[x]\nurl = http://u:very@long:secret\n  still-secret@host/p\n";
        let masked = mask_secret_values(text);
        for secret in ["pw#2x", "pa/ss1", "first-part", "second-part", "third-part", "very@long", "still-secret"] {
            assert!(!masked.contains(secret), "{secret} in {masked}");
        }
        assert!(masked.contains("connection = mysql+pymysql://watcher:<redacted>@db/watcher\n"), "{masked}");
        assert!(masked.contains("transport_url = rabbit://watcher:<redacted>@host:5672/\n"), "{masked}");
        assert!(
            masked.contains("password = <redacted>\n    <redacted>\n\t<redacted>\nusername = watcher\n"),
            "{masked}"
        );
        assert!(masked.contains("url = http://u:<redacted>@host/p\n"), "{masked}");
    }

    /// Every part of `secret` of 4 characters or more that `masked` shows,
    /// leaving out those that `template` (the text around the secret) holds.
    fn shown_parts(secret: &str, masked: &str, template: &str) -> Vec<String> {
        let chars: Vec<char> = secret.chars().collect();
        let mut shown = Vec::new();
        for start in 0..chars.len() {
            for end in start + 4..=chars.len() {
                let part: String = chars[start..end].iter().collect();
                if masked.contains(&part) && !template.contains(&part) {
                    shown.push(part);
                }
            }
        }
        shown
    }

    /// Lines a watcher.conf can have, including awkward ones.
    fn ini_line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-zA-Z_]{1,12}".prop_map(|s| format!("[{s}]")),
            Just("[maas_client]".to_owned()),
            Just("[IRONIC_client]".to_owned()),
            Just("[DEFAULT]".to_owned()),
            "[a-z_]{1,8} ?= ?[ -~]{0,20}",
            "[#;][ -~]{0,20}",
            "[ \t][ -~]{0,10}",
            "[ -~]{0,20}",
        ]
    }

    fn ini_file() -> impl Strategy<Value = String> {
        (proptest::collection::vec(ini_line(), 0..30), any::<bool>(), any::<bool>()).prop_map(
            |(lines, crlf, final_eol)| {
                let eol = if crlf { "\r\n" } else { "\n" };
                let mut text = lines.join(eol);
                if final_eol && !text.is_empty() {
                    text.push_str(eol);
                }
                text
            },
        )
    }

    /// The lines of `text` outside the managed sections (their header, options
    /// and continuation lines), in order.
    fn unmanaged_lines(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut in_managed = false;
        let mut pending: Vec<String> = Vec::new();
        for line in text.lines() {
            match classify(line) {
                LineKind::Header(name) => {
                    // Comments after a managed section's last option stay.
                    out.append(&mut pending);
                    in_managed = ["maas_client", "ironic_client"].contains(&normalise_section(name).as_str());
                    if !in_managed {
                        out.push(line.to_owned());
                    }
                }
                LineKind::Option | LineKind::Continuation if in_managed => pending.clear(),
                LineKind::Blank => {}
                _ if in_managed => pending.push(line.to_owned()),
                _ => out.push(line.to_owned()),
            }
        }
        out.append(&mut pending);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn merge_keeps_every_unmanaged_line(existing in ini_file(), with_maas in any::<bool>()) {
            let maas = with_maas.then_some(MAAS);
            let merged = merge(&existing, &both(maas));
            prop_assert_eq!(unmanaged_lines(&merged), unmanaged_lines(&existing));
            // Idempotent: a second run changes nothing.
            prop_assert_eq!(merge(&merged, &both(maas)), merged.clone());
            // Exactly one of each configured managed section, with our content.
            let headers: Vec<String> = merged.lines().filter_map(|l| match classify(l) {
                LineKind::Header(n) => Some(normalise_section(n)),
                _ => None,
            }).collect();
            prop_assert_eq!(headers.iter().filter(|h| *h == "ironic_client").count(), 1);
            prop_assert_eq!(headers.iter().filter(|h| *h == "maas_client").count(), usize::from(with_maas));
            let normalised = merged.replace("\r\n", "\n");
            prop_assert!(normalised.contains(IRONIC));
            if with_maas {
                prop_assert!(normalised.contains(MAAS));
            }
        }

        /// The masker against the `url` crate: a password of any printable
        /// characters is masked whole, written raw (as users paste them) or
        /// percent-encoded; for the encoded form, which the parser reads as
        /// the user meant, the masked URL keeps the parser's user, host,
        /// port, path and query.
        #[test]
        fn url_passwords_are_masked_whatever_they_hold(
            password in "[ -~\u{e9}\u{20ac}]{1,24}",
            base in prop_oneof![
                Just("mysql+pymysql://watcher@db.example:3306/watcher?charset=utf8"),
                Just("rabbit://watcher@rabbit-1.example:5672/openstack"),
                Just("http://user@[fd00::1]:8080/a/b"),
            ],
            key in prop_oneof![Just("connection"), Just("transport_url"), Just("url")],
        ) {
            let template = format!("[x]\n{key} = {}\n", base.replacen('@', ":<redacted>@", 1));
            // Raw: exactly the URL with the password replaced.
            let (scheme, rest) = base.split_once("://").unwrap();
            let (user, host) = rest.split_once('@').unwrap();
            let raw = format!("[x]\n{key} = {scheme}://{user}:{password}@{host}\n");
            let masked = mask_secret_values(&raw);
            prop_assert_eq!(&masked, &template);
            prop_assert!(shown_parts(&password, &masked, &template).is_empty());

            // Encoded by the parser itself.
            let mut url = url::Url::parse(base).unwrap();
            url.set_password(Some(&password)).unwrap();
            let encoded = format!("[x]\n{key} = {url}\n");
            let masked = mask_secret_values(&encoded);
            prop_assert!(shown_parts(&password, &masked, &template).is_empty(), "{}", masked);
            prop_assert!(shown_parts(url.password().unwrap(), &masked, &template).is_empty(), "{}", masked);
            let value = masked.trim_end().split_once(" = ").unwrap().1;
            let seen = url::Url::parse(value).unwrap();
            prop_assert_eq!(seen.username(), url.username());
            prop_assert_eq!(seen.host(), url.host());
            prop_assert_eq!(seen.port(), url.port());
            prop_assert_eq!(seen.path(), url.path());
            prop_assert_eq!(seen.query(), url.query());
            prop_assert_ne!(seen.password(), url.password());
        }

        #[test]
        fn merge_and_mask_never_panic(existing in "(?s).{0,300}") {
            let merged = merge(&existing, &both(Some(MAAS)));
            let _ = mask_secret_values(&merged);
            let _ = read_section(&existing, "maas_client");
        }

    }
}
