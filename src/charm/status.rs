//! The one rule every status the charm sets goes through: one line of what
//! `juju status` shows. The operations write their messages to fit, the
//! fix first; one that does not (a long path in it) is cut at a word, so
//! its end is lost, never its fix, and the whole message goes to
//! `juju-log`. And the mapping of an operation's [`Note`]s onto hook tools.

use crate::host::juju::{HookTools, LogLevel, Status};
use crate::host::system::one_line;
use crate::ops::converge::Note;
use crate::ops::Error;
use crate::secret::mask_api_key_shapes;

/// The longest status message: `juju status` shows about this much; the
/// whole message goes to `juju-log`.
pub(super) const MAX_STATUS: usize = 120;

/// Sets the unit's status, as one line of at most [`MAX_STATUS`] bytes.
pub(super) fn set(tools: &dyn HookTools, status: Status, message: &str) -> Result<(), Error> {
    // Masked before it is cut: a cut key would not look like one.
    let line = mask_api_key_shapes(&one_line(message));
    let short = shorten(&line, MAX_STATUS);
    if short.len() < line.len() {
        tools.log(LogLevel::Info, &format!("{} status, in full: {line}", status.as_str()))?;
    }
    tools.status_set(status, &short)?;
    Ok(())
}

/// Tells `note` through the hook tools.
pub(super) fn tell(tools: &dyn HookTools, note: Note) -> Result<(), Error> {
    match note {
        Note::Log(level, text) => tools.log(level, &text)?,
        Note::Status(status, message) => set(tools, status, &message)?,
        Note::Version(version) => tools.application_version_set(&version)?,
    }
    Ok(())
}

/// `text` cut to at most `max` bytes at a word boundary, with `...` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text[..end].rfind(' ').filter(|&at| at > max / 2).unwrap_or(end);
    format!("{}...", text[..cut].trim_end_matches([' ', ';', ',', ':']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_statuses_are_cut_at_a_word() {
        let long = "cannot install python3-libmaas: E: Unable to locate package python3-libmaas because the mirror http://archive.example.com/ubuntu is down";
        let short = shorten(long, MAX_STATUS);
        assert!(short.len() <= MAX_STATUS, "{short}");
        assert!(short.ends_with("...") && long.starts_with(short.trim_end_matches("...")), "{short}");
        assert_eq!(shorten("short", MAX_STATUS), "short");
        let unicode = "é".repeat(100);
        assert!(shorten(&unicode, MAX_STATUS).len() <= MAX_STATUS);
    }

    #[test]
    fn status_messages_are_one_line() {
        assert_eq!(one_line("a\n  b\r\nc"), "a b c");
    }
}
