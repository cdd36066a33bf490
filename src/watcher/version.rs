//! Watcher's version on a unit, and what is known of each version's MAAS
//! path (measured by `scripts/watcher-compat`; see the README's
//! compatibility table).

use std::fmt;

/// An upstream release number, `MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct WatcherVersion {
    major: u32,
    minor: u32,
    patch: u32,
}

impl fmt::Display for WatcherVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The first release with a MAAS metal helper (2024.1, Caracal).
pub(crate) const FIRST_WITH_MAAS: WatcherVersion = WatcherVersion { major: 12, minor: 0, patch: 0 };
/// The first release whose `[maas_client] api_key` is a secret option, so
/// `debug = true` no longer logs it.
const FIRST_WITH_SECRET_KEY: WatcherVersion = WatcherVersion { major: 17, minor: 0, patch: 0 };
/// The last release measured with a working MAAS path.
pub(crate) const LAST_WORKING_MAAS: WatcherVersion = WatcherVersion { major: 15, minor: 0, patch: 0 };
/// The first release measured with the upstream Nova-helper defects that
/// break MAAS power actions (16.0.0: `get_node` and saving_energy; 17.0.0
/// also node listing and the applier's threads).
const FIRST_WITH_NOVA_HELPER_DEFECTS: WatcherVersion = WatcherVersion { major: 16, minor: 0, patch: 0 };

impl WatcherVersion {
    /// `12.0.0`, `12.0.0.0rc1`, `12.0`: the leading numbers.
    fn parse(text: &str) -> Option<WatcherVersion> {
        let mut parts = text.split('.').map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let major = parts.next()??;
        let minor = parts.next().flatten().unwrap_or(0);
        let patch = parts.next().flatten().unwrap_or(0);
        Some(WatcherVersion { major, minor, patch })
    }

    /// A Debian package version (`2:12.0.0-0ubuntu1~cloud0`): the epoch and
    /// the Debian revision are dropped.
    pub(crate) fn parse_deb(text: &str) -> Option<WatcherVersion> {
        let text = text.trim();
        let upstream = text.split_once(':').map_or(text, |(_, rest)| rest);
        let upstream = upstream.rsplit_once('-').map_or(upstream, |(up, _)| up);
        let upstream = upstream.split(['~', '+']).next().unwrap_or(upstream);
        WatcherVersion::parse(upstream)
    }

    /// What this version's MAAS path does, in a few words.
    pub(crate) fn maas_support(self) -> MaasSupport {
        if self < FIRST_WITH_MAAS {
            MaasSupport::Missing
        } else if self >= FIRST_WITH_NOVA_HELPER_DEFECTS {
            MaasSupport::Defective {
                why: "its Nova helper is broken upstream: get_node and saving_energy fail (from 16.0.0), and node listing too (17.0.0)",
            }
        } else {
            MaasSupport::Works
        }
    }

    /// Whether `[DEFAULT] debug = true` makes this version log the MAAS
    /// key in clear at start-up.
    pub(crate) fn logs_key_with_debug(self) -> bool {
        self >= FIRST_WITH_MAAS && self < FIRST_WITH_SECRET_KEY
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaasSupport {
    /// No MAAS metal helper at all.
    Missing,
    /// The helper exists and its power actions work (12.x to 15.x).
    Works,
    /// The helper exists, but power actions fail for the reason given.
    Defective {
        /// One line naming the upstream defects.
        why: &'static str,
    },
}

/// oslo.config's boolean: `true`, `1`, `on`, `yes` (any case) are true.
pub(crate) fn oslo_bool(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "1" | "on" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, patch: u32) -> WatcherVersion {
        WatcherVersion { major, minor, patch }
    }

    #[test]
    fn package_versions() {
        assert_eq!(WatcherVersion::parse_deb("2:12.0.0-0ubuntu1"), Some(v(12, 0, 0)));
        assert_eq!(WatcherVersion::parse_deb("2:17.0.0-0ubuntu1~cloud0"), Some(v(17, 0, 0)));
        assert_eq!(WatcherVersion::parse_deb("1:4.0.0-0ubuntu0.20.04.1"), Some(v(4, 0, 0)));
        assert_eq!(WatcherVersion::parse_deb("12.1.0"), Some(v(12, 1, 0)));
        assert_eq!(WatcherVersion::parse_deb("2:13.0.0~rc1-0ubuntu1"), Some(v(13, 0, 0)));
        assert_eq!(WatcherVersion::parse_deb(""), None);
        assert_eq!(WatcherVersion::parse_deb("x"), None);
    }

    #[test]
    fn what_each_version_can_do() {
        assert_eq!(v(11, 0, 0).maas_support(), MaasSupport::Missing);
        assert_eq!(v(12, 0, 0).maas_support(), MaasSupport::Works);
        assert_eq!(v(15, 0, 0).maas_support(), MaasSupport::Works);
        assert!(matches!(v(16, 0, 0).maas_support(), MaasSupport::Defective { .. }));
        assert!(matches!(v(17, 0, 0).maas_support(), MaasSupport::Defective { .. }));
        assert!(v(12, 0, 0).logs_key_with_debug());
        assert!(v(16, 9, 0).logs_key_with_debug());
        assert!(!v(17, 0, 0).logs_key_with_debug());
        assert!(!v(11, 0, 0).logs_key_with_debug());
    }

    #[test]
    fn oslo_booleans() {
        for t in ["true", "True", "1", "yes", "on", " TRUE "] {
            assert!(oslo_bool(t), "{t}");
        }
        for f in ["false", "0", "no", "off", "", "maybe"] {
            assert!(!oslo_bool(f), "{f}");
        }
    }
}
