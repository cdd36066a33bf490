//! Rendering watcher.conf and its managed sections from templates.
//!
//! Templates are embedded in the binary; a directory given with
//! `--templates` overrides them file by file. Every `{{ value }}` goes
//! through [`ini_value`], so no value can start a new line or section, and
//! values whose edges oslo.config would strip (spaces, quotes) are quoted.
//! Values from the charm config are also made literal for oslo.config by
//! doubling `$`; values from the context file are written as given, so
//! oslo.config references such as `$state_path` keep working there.

use std::path::{Path, PathBuf};

use minijinja::value::ValueKind;
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;

use crate::config::CharmConfig;

const FULL_TEMPLATE: &str = "watcher.conf.j2";
const MAAS_TEMPLATE: &str = "maas_client.conf.j2";
const IRONIC_TEMPLATE: &str = "ironic_client.conf.j2";

pub(crate) const MAAS_SECTION: &str = "maas_client";
pub(crate) const IRONIC_SECTION: &str = "ironic_client";

/// The lines of the drop-in's header after the first.
const DROP_IN_HEADER_REST: &str = "# Watcher reads this directory's *.conf files in sorted order, then watcher.conf:\n\
# a later file wins, so watcher.conf must not set these options.\n";

/// The first words of the drop-in's header: a file carrying them is a
/// drop-in watcher-metal wrote, which it may replace or remove.
const DROP_IN_MARKER: &str = "# Written by watcher-metal";

/// What follows the marker when a charm's unit wrote the file: the name of
/// its Juju application, so that two applications of the charm on one
/// machine each know their own files.
const APPLICATION_TAG: &str = " for application ";

/// The first line of a file watcher-metal writes: its marker, and the Juju
/// application whose unit wrote it (`None`: the CLI). `what` says where the
/// content comes from.
pub(crate) fn marker_line(application: Option<&str>, what: &str) -> String {
    match application {
        Some(app) => format!("{DROP_IN_MARKER}{APPLICATION_TAG}{app} {what}"),
        None => format!("{DROP_IN_MARKER} {what}"),
    }
}

/// Whether `text` carries watcher-metal's marker, and for which application:
/// `None` when it does not (the site's file: never replaced or removed),
/// `Some(None)` when it names no application (the CLI, or a version before
/// the marker named one), `Some(Some(app))` when a unit of `app` wrote it.
pub(crate) fn marked_by(text: &str) -> Option<Option<&str>> {
    text.lines().find_map(|line| {
        let rest = line.trim_start_matches('\u{feff}').trim_start().strip_prefix(DROP_IN_MARKER)?;
        Some(rest.strip_prefix(APPLICATION_TAG).and_then(|r| r.split_whitespace().next()))
    })
}

/// Whether `text` is a drop-in watcher-metal wrote: one of its lines starts
/// with the header's marker. Any other file is the site's, never replaced
/// or removed.
pub(crate) fn is_our_drop_in(text: &str) -> bool {
    marked_by(text).is_some()
}

/// The templates built into the binary.
const EMBEDDED: [(&str, &str); 3] = [
    (FULL_TEMPLATE, include_str!("../../templates/watcher.conf.j2")),
    (MAAS_TEMPLATE, include_str!("../../templates/maas_client.conf.j2")),
    (IRONIC_TEMPLATE, include_str!("../../templates/ironic_client.conf.j2")),
];

/// Why the templates could not be loaded or rendered, or a context file
/// not be used.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The `--templates` directory is missing, is not a directory, or holds
    /// a template that cannot be read.
    #[error("templates directory {}: {message}", path.display())]
    TemplatesDir {
        /// The directory as given.
        path: PathBuf,
        /// What is wrong, e.g. `is not a directory`.
        message: String,
    },
    /// A template does not parse or render, or renders something the merge
    /// cannot use (nothing, or not exactly its own section). The text is one
    /// line naming the template.
    #[error("template {0}")]
    Template(String),
    /// The context file is not a YAML map of sections of plain options, or
    /// sets a managed section.
    #[error("{source_name}: {message}")]
    Context {
        /// The name given to [`RenderContext::parse`], e.g. the file's path.
        source_name: String,
        /// What is wrong, naming the section and option where there is one.
        message: String,
    },
}

impl RenderError {
    /// One line telling the user what to fix.
    pub(crate) fn hint(&self) -> String {
        match self {
            RenderError::TemplatesDir { .. } => {
                "give --templates a readable directory holding watcher.conf.j2, maas_client.conf.j2 and/or ironic_client.conf.j2"
            }
            RenderError::Template(_) => "fix the template, or drop --templates to use the built-in ones",
            RenderError::Context { .. } => {
                "the context file is a YAML map of sections, each a map of option: value, e.g. `database: {connection: ...}`"
            }
        }
        .to_owned()
    }
}

/// Sections read from a `--context` file: section name to options, in file
/// order. Checked so that it cannot clash with the managed sections.
#[derive(Debug, Clone, Default)]
pub struct RenderContext {
    sections: serde_yaml::Mapping,
}

impl RenderContext {
    /// Parses and checks the YAML `text`; `source_name` names it in errors.
    /// An empty document is no sections.
    pub fn parse(text: &str, source_name: &str) -> Result<RenderContext, RenderError> {
        let error = |message: String| RenderError::Context { source_name: source_name.to_owned(), message };
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            error(match e.location() {
                Some(l) => format!("not valid YAML: syntax error at line {}, column {}", l.line(), l.column()),
                None => "not valid YAML".to_owned(),
            })
        })?;
        let sections = match value {
            serde_yaml::Value::Null => serde_yaml::Mapping::new(),
            serde_yaml::Value::Mapping(map) => map,
            _ => return Err(error("is not a map of sections".to_owned())),
        };
        for (name, options) in &sections {
            let Some(name) = name.as_str().filter(|n| is_ini_name(n)) else {
                return Err(error(format!("section name {} is not a plain name", describe_key(name))));
            };
            if [MAAS_SECTION, IRONIC_SECTION].contains(&crate::watcher::ini::normalise_section(name).as_str()) {
                return Err(error(format!("sets [{name}], which is managed from the charm config; remove it")));
            }
            let options = match options {
                serde_yaml::Value::Mapping(map) => map,
                serde_yaml::Value::Null => continue,
                _ => return Err(error(format!("section [{name}] is not a map of options"))),
            };
            for (key, value) in options {
                let Some(key) = key.as_str().filter(|k| is_ini_name(k)) else {
                    return Err(error(format!(
                        "[{name}] has option name {} that is not a plain name",
                        describe_key(key)
                    )));
                };
                check_context_value(value).map_err(|what| error(format!("[{name}] {key}: {what}")))?;
            }
        }
        // Numbers and booleans are written as they were typed: oslo.config
        // reads text, and `api_version: 2.60` must stay 2.60, not become 2.6.
        let Ok(serde_yaml::Value::Mapping(sections)) =
            super::parse::with_source_texts(text, &serde_yaml::Value::Mapping(sections))
        else {
            return Err(error("not valid YAML".to_owned()));
        };
        Ok(RenderContext { sections })
    }
}

fn describe_key(key: &serde_yaml::Value) -> String {
    match key.as_str() {
        Some(s) => format!("`{}`", s.chars().filter(|c| !c.is_control()).take(40).collect::<String>()),
        None => "(not a string)".to_owned(),
    }
}

/// Section and option names: letters, digits, `_`, `-` and `.`.
fn is_ini_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn check_context_value(value: &serde_yaml::Value) -> Result<(), &'static str> {
    match value {
        serde_yaml::Value::Null | serde_yaml::Value::Bool(_) | serde_yaml::Value::Number(_) => Ok(()),
        serde_yaml::Value::String(s) => ini_safe(s),
        serde_yaml::Value::Sequence(items) => items.iter().try_for_each(|item| match item {
            serde_yaml::Value::Sequence(_) | serde_yaml::Value::Mapping(_) => Err("a list may hold only plain values"),
            other => check_context_value(other),
        }),
        serde_yaml::Value::Mapping(_) => Err("is a map; an option's value must be a plain value or a list"),
        serde_yaml::Value::Tagged(_) => Err("is a tagged YAML value; use a plain value"),
    }
}

fn ini_safe(s: &str) -> Result<(), &'static str> {
    if s.chars().any(char::is_control) {
        Err("contains a line break or control character, which would break the file")
    } else {
        Ok(())
    }
}

/// A value as oslo.config will read it back: refuses line breaks and
/// control characters; quotes values whose edges the parser would strip.
pub fn ini_value(value: &Value) -> Result<String, minijinja::Error> {
    let invalid = |what: &str| minijinja::Error::new(ErrorKind::InvalidOperation, what.to_owned());
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Ok(String::new()),
        ValueKind::Seq => {
            let mut parts = Vec::new();
            for item in value.try_iter()? {
                parts.push(ini_value(&item)?);
            }
            Ok(parts.join(","))
        }
        ValueKind::Map => Err(invalid("a map cannot be written as an option value")),
        ValueKind::Bool => Ok(if value.is_true() { "true" } else { "false" }.to_owned()),
        _ => {
            let text = value.to_string();
            ini_safe(&text).map_err(invalid)?;
            if text.contains("\\$$") {
                // oslo.config reads `\$` as `$`, always: no way to write it.
                return Err(invalid("contains `\\$`, which oslo.config always reads as `$`"));
            }
            // What oslo.config strips: Python's white space, then one pair
            // of matching quotes (a lone quote is its own pair).
            let py_space = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
            let trimmed = text.trim_matches(py_space);
            let quoted_edges = text.starts_with(['"', '\'']) && text.chars().next() == text.chars().next_back();
            if trimmed.len() != text.len() || quoted_edges {
                Ok(format!("\"{text}\""))
            } else {
                Ok(text)
            }
        }
    }
}

/// A charm-config value made literal for oslo.config, which would otherwise
/// substitute `$name` references.
pub fn oslo_literal(value: &str) -> String {
    value.replace('$', "$$")
}

#[derive(Serialize)]
struct MaasView {
    url: String,
    api_key: String,
    timeout: u32,
}

#[derive(Serialize)]
struct IronicView {
    api_version: String,
    endpoint_type: String,
    region_name: Option<String>,
}

fn charm_view(config: &CharmConfig) -> (Option<MaasView>, IronicView) {
    let maas = config.maas.as_ref().map(|m| MaasView {
        url: oslo_literal(m.url.as_configured()),
        api_key: oslo_literal(m.api_key.whole().expose()),
        timeout: m.timeout,
    });
    let ironic = IronicView {
        api_version: oslo_literal(&config.ironic.api_version),
        endpoint_type: config.ironic.endpoint_type.clone(),
        region_name: config.ironic.region_name.as_deref().map(oslo_literal),
    };
    (maas, ironic)
}

/// The managed sections as rendered: `maas` is `None` when the section
/// must be removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManagedRender {
    /// `[maas_client]`, header included, ending in a newline.
    pub(crate) maas: Option<String>,
    /// `[ironic_client]`, header included, ending in a newline.
    pub(crate) ironic: String,
}

/// The three templates, each embedded or overridden, ready to render.
pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    /// A renderer using the embedded templates, each overridden by a file of
    /// the same name in `override_dir` when there is one.
    pub fn new(override_dir: Option<&Path>) -> Result<Renderer, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        env.set_formatter(|out, _state, value| {
            let text = ini_value(value)?;
            out.write_str(&text).map_err(minijinja::Error::from)
        });
        for (name, embedded) in EMBEDDED {
            let source = match override_dir {
                Some(dir) => read_override(dir, name)?.unwrap_or_else(|| embedded.to_owned()),
                None => embedded.to_owned(),
            };
            env.add_template_owned(name, source).map_err(|e| RenderError::Template(describe(&e)))?;
        }
        Ok(Renderer { env })
    }

    fn render(&self, name: &str, ctx: Value) -> Result<String, RenderError> {
        let template = self.env.get_template(name).map_err(|e| RenderError::Template(describe(&e)))?;
        template.render(ctx).map_err(|e| RenderError::Template(describe(&e)))
    }

    /// `[maas_client]` and `[ironic_client]` for the managed-sections merge.
    pub(crate) fn managed_sections(&self, config: &CharmConfig) -> Result<ManagedRender, RenderError> {
        let (maas, ironic) = charm_view(config);
        let ctx = minijinja::context! { maas => maas, ironic => ironic };
        let maas = section_body(&self.render(MAAS_TEMPLATE, ctx.clone())?);
        let ironic = section_body(&self.render(IRONIC_TEMPLATE, ctx)?);
        let Some(ironic) = ironic else {
            return Err(RenderError::Template(format!("{IRONIC_TEMPLATE} rendered nothing")));
        };
        if config.maas.is_some() && maas.is_none() {
            return Err(RenderError::Template(format!("{MAAS_TEMPLATE} rendered nothing although MAAS is configured")));
        }
        for (name, body) in [(MAAS_SECTION, maas.as_deref()), (IRONIC_SECTION, Some(ironic.as_str()))] {
            if let Some(body) = body {
                check_single_section(name, body)?;
            }
        }
        Ok(ManagedRender { maas, ironic })
    }

    /// The drop-in file: a header (naming the Juju application whose unit
    /// writes it, if any), then `[maas_client]` (when MAAS is configured)
    /// and `[ironic_client]`.
    pub(crate) fn drop_in(&self, config: &CharmConfig, application: Option<&str>) -> Result<String, RenderError> {
        let managed = self.managed_sections(config)?;
        let mut out = marker_line(application, "from the charm config; local edits are replaced.\n");
        out.push_str(DROP_IN_HEADER_REST);
        for body in managed.maas.iter().chain([&managed.ironic]) {
            out.push('\n');
            out.push_str(body);
            if !body.ends_with('\n') {
                out.push('\n');
            }
        }
        Ok(out)
    }

    /// A whole watcher.conf from the charm config and the context sections.
    pub(crate) fn full(&self, config: &CharmConfig, context: &RenderContext) -> Result<String, RenderError> {
        let (maas, ironic) = charm_view(config);
        let ctx = minijinja::context! {
            maas => maas,
            ironic => ironic,
            context => Value::from_serialize(&context.sections),
        };
        self.render(FULL_TEMPLATE, ctx)
    }
}

fn read_override(dir: &Path, name: &str) -> Result<Option<String>, RenderError> {
    let dir_error = |message: String| RenderError::TemplatesDir { path: dir.to_owned(), message };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(dir_error("is not a directory".to_owned())),
        Err(e) => return Err(dir_error(e.to_string())),
    }
    match std::fs::read_to_string(dir.join(name)) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(dir_error(format!("cannot read {name}: {e}"))),
    }
}

/// A minijinja error on one line: kind, detail and where.
fn describe(e: &minijinja::Error) -> String {
    let mut text = match e.name() {
        Some(name) => name.to_owned(),
        None => "(unnamed)".to_owned(),
    };
    text.push_str(": ");
    text.push_str(&e.kind().to_string());
    if let Some(detail) = e.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(line) = e.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

/// A rendered section without surrounding blank lines, or `None` if empty.
fn section_body(rendered: &str) -> Option<String> {
    let body: Vec<&str> = rendered.lines().skip_while(|l| l.trim().is_empty()).collect();
    let text = body.join("\n");
    let text = text.trim_end();
    (!text.is_empty()).then(|| format!("{text}\n"))
}

/// A managed template must render exactly one section of its own name, so
/// that an override cannot clobber other sections during the merge.
fn check_single_section(name: &str, body: &str) -> Result<(), RenderError> {
    let headers: Vec<&str> =
        body.lines().map(str::trim_end).filter(|l| l.starts_with('[') && l.ends_with(']') && l.len() > 2).collect();
    if headers.len() == 1 && crate::watcher::ini::normalise_section(&headers[0][1..headers[0].len() - 1]) == name {
        Ok(())
    } else {
        Err(RenderError::Template(format!(
            "for [{name}] must render exactly one section, [{name}]; it rendered {headers:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_drop_ins_are_known_by_their_header() {
        let cli = marker_line(None, "from the charm config; local edits are replaced.\n");
        assert_eq!(cli, "# Written by watcher-metal from the charm config; local edits are replaced.\n");
        assert_eq!(marked_by(&cli), Some(None));
        let unit = marker_line(Some("watcher-maas-b"), "from the charm config; local edits are replaced.\n");
        assert_eq!(
            unit,
            "# Written by watcher-metal for application watcher-maas-b from the charm config; local edits are replaced.\n"
        );
        assert_eq!(marked_by(&format!("{unit}{DROP_IN_HEADER_REST}")), Some(Some("watcher-maas-b")));
        assert!(is_our_drop_in("\u{feff}# Written by watcher-metal from the charm config\r\n[maas_client]\r\n"));
        assert!(is_our_drop_in("# a note\n# Written by watcher-metal\n"));
        for site in [
            "",
            "[DEFAULT]\ndebug = true\n",
            "[maas_client]\n# Managed by watcher-metal\n",
            "x = # Written by watcher-metal\n",
        ] {
            assert!(!is_our_drop_in(site), "{site:?}");
        }
    }

    #[test]
    fn ini_value_quotes_edges_and_refuses_line_breaks() {
        let v = |s: &str| ini_value(&Value::from(s));
        assert_eq!(v("plain").unwrap(), "plain");
        assert_eq!(v(" padded ").unwrap(), "\" padded \"");
        assert_eq!(v("\"quoted\"").unwrap(), "\"\"quoted\"\"");
        assert_eq!(v("'x'").unwrap(), "\"'x'\"");
        assert_eq!(v("a#b;c=d").unwrap(), "a#b;c=d");
        assert!(v("a\nb").is_err());
        assert!(v("a\r[DEFAULT]").is_err());
        assert!(v("a\u{0}").is_err());
        assert_eq!(ini_value(&Value::from(vec!["a", "b"])).unwrap(), "a,b");
        assert_eq!(ini_value(&Value::from(true)).unwrap(), "true");
        assert_eq!(ini_value(&Value::from(60)).unwrap(), "60");
        assert_eq!(ini_value(&Value::from(())).unwrap(), "");
    }

    #[test]
    fn oslo_literal_doubles_dollars() {
        assert_eq!(oslo_literal("a$b$$c"), "a$$b$$$$c");
    }

    #[test]
    fn context_rejects_managed_sections_and_bad_values() {
        let err = |text: &str| RenderContext::parse(text, "ctx.yaml").unwrap_err().to_string();
        assert_eq!(
            err("maas_client:\n  url: x\n"),
            "ctx.yaml: sets [maas_client], which is managed from the charm config; remove it"
        );
        assert_eq!(
            err("IRONIC_CLIENT: {}\n"),
            "ctx.yaml: sets [IRONIC_CLIENT], which is managed from the charm config; remove it"
        );
        assert_eq!(
            err("DEFAULT:\n  debug: \"true\\n[maas_client]\"\n"),
            "ctx.yaml: [DEFAULT] debug: contains a line break or control character, which would break the file"
        );
        assert_eq!(err("\"bad]\": {}\n"), "ctx.yaml: section name `bad]` is not a plain name");
        assert_eq!(
            err("DEFAULT:\n  \"a b\": 1\n"),
            "ctx.yaml: [DEFAULT] has option name `a b` that is not a plain name"
        );
        assert_eq!(
            err("DEFAULT:\n  x: {a: 1}\n"),
            "ctx.yaml: [DEFAULT] x: is a map; an option's value must be a plain value or a list"
        );
        assert_eq!(err("DEFAULT: 3\n"), "ctx.yaml: section [DEFAULT] is not a map of options");
        assert_eq!(err("[1]\n"), "ctx.yaml: is not a map of sections");
        assert!(err("a: [\n").starts_with("ctx.yaml: not valid YAML: syntax error at line"));
    }

    #[test]
    fn context_numbers_and_booleans_keep_their_text() {
        let context = RenderContext::parse(
            "nova_client:\n  api_version: 2.60\nDEFAULT:\n  debug: True\n  workers: 010\n  ratio: 1.50\n  list: [1.0, 2.10, yes, false]\n  quoted: \"3.10\"\n  alias: &v 4.20\n  again: *v\n",
            "ctx.yaml",
        )
        .unwrap();
        let config = crate::config::load(&Vec::new(), &crate::config::NoSecrets).unwrap().0;
        let text = Renderer::new(None).unwrap().full(&config, &context).unwrap();
        for line in [
            "api_version = 2.60\n",
            "debug = True\n",
            "workers = 010\n",
            "ratio = 1.50\n",
            "list = 1.0,2.10,yes,false\n",
            "quoted = 3.10\n",
            "alias = 4.20\n",
            "again = 4.20\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn override_dir_must_exist() {
        let err = Renderer::new(Some(Path::new("/nonexistent/templates"))).err().unwrap();
        assert!(matches!(err, RenderError::TemplatesDir { .. }));
    }
}
