//! What the OpenStack simulators (Ironic, Nova, the Keystone in front of
//! them) have in common on the wire: microversions, deterministic ids,
//! Keystone's timestamps and oslo's boolean parsing.

use time::OffsetDateTime;

/// A microversion `X.Y` as (major, minor); each part 1 to 6 digits.
pub(crate) fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// A microversion as text, `1.46`.
pub(crate) fn version_text(v: (u32, u32)) -> String {
    format!("{}.{}", v.0, v.1)
}

/// `oslo_utils.strutils.bool_from_string(strict=True)`.
pub(crate) fn bool_from_string(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// SplitMix64: a fixed, well-mixed function of `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn bytes_for(salt: u64, i: u64) -> [u8; 16] {
    let hi = mix(mix(salt) ^ i);
    let lo = mix(hi ^ 0x5bd1_e995_0000_0001);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&hi.to_be_bytes());
    b[8..].copy_from_slice(&lo.to_be_bytes());
    b
}

/// A version-4 style UUID (`8-4-4-4-12` lowercase hex), the same for the
/// same `salt` and `i`, distinct for distinct `i`.
pub(crate) fn uuid_for(salt: u64, i: u64) -> String {
    let mut b = bytes_for(salt, i);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// A 32-hex-digit id (as Keystone makes them), the same for the same text.
pub(crate) fn hex_id(text: &str) -> String {
    // FNV-1a, then mixed into 128 bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    bytes_for(h, 0).iter().map(|x| format!("{x:02x}")).collect()
}

/// The last second of year 9999.
const LAST_SECOND: i64 = 253_402_300_799;

/// A time as Keystone writes it: `2015-11-07T02:58:43.578887Z`. Times before
/// 1970 or after 9999 are clamped to those years.
pub(crate) fn rfc3339(unix_secs: i64, micros: u32) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix_secs.clamp(0, LAST_SECOND)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        micros.min(999_999)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.46"), Some((1, 46)));
        assert_eq!(parse_version(" 1.1 "), Some((1, 1)));
        assert_eq!(parse_version("2.56"), Some((2, 56)));
        for bad in ["", "1", "2", "1.", ".1", "1.x", "latest", "1.2.3", "99999999.1", "-1.2"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
        assert_eq!(version_text((2, 96)), "2.96");
    }

    #[test]
    fn booleans() {
        assert_eq!(bool_from_string(" True "), Some(true));
        assert_eq!(bool_from_string("off"), Some(false));
        assert_eq!(bool_from_string("maybe"), None);
    }

    #[test]
    fn ids() {
        let many: HashSet<_> = (0..100_000).map(|i| uuid_for(1, i)).collect();
        assert_eq!(many.len(), 100_000);
        let u = uuid_for(7, 7);
        assert_eq!((u.len(), &u[14..15]), (36, "4"));
        let id = hex_id("user:watcher");
        assert_eq!((id.len(), id.clone()), (32, hex_id("user:watcher")));
        assert_ne!(id, hex_id("user:other"));
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(1_446_865_123, 578_887), "2015-11-07T02:58:43.578887Z");
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(1_709_210_096, 5_000_000), "2024-02-29T12:34:56.999999Z");
        assert_eq!(rfc3339(LAST_SECOND, 0), "9999-12-31T23:59:59.000000Z");
    }
}
