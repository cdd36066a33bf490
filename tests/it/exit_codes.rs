//! The README's exit-code table is the code's: every constant of
//! `watcher_metal::exit_codes` has a row, and every row a constant.

use std::collections::BTreeSet;

/// `(name, code)` of each `pub const NAME: u8 = CODE;` of `exit_codes`.
fn constants() -> Vec<(String, u8)> {
    let source = std::fs::read_to_string("src/exit_codes.rs").unwrap();
    source
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let (name, value) = rest.split_once(": u8 = ")?;
            Some((name.to_owned(), value.trim_end_matches(';').parse().ok()?))
        })
        .collect()
}

/// The codes of the README's `## Exit codes` table.
fn readme_codes() -> Vec<u8> {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let start = readme.find("\n## Exit codes").expect("README.md has an exit-code section");
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    section[..end].lines().filter_map(|line| line.strip_prefix("| ")?.split(" |").next()?.trim().parse().ok()).collect()
}

#[test]
fn the_readme_table_lists_exactly_the_codes_in_use() {
    let constants = constants();
    assert!(constants.len() > 40, "the exit module was not read: {constants:?}");
    let mut seen = BTreeSet::new();
    for (name, code) in &constants {
        assert!(seen.insert(*code), "exit code {code} ({name}) is used twice");
    }
    // 0 is success, which has no constant.
    seen.insert(0);
    let rows = readme_codes();
    let documented: BTreeSet<u8> = rows.iter().copied().collect();
    assert_eq!(rows.len(), documented.len(), "a code has two rows in the README: {rows:?}");
    assert_eq!(documented, seen, "README.md's exit codes differ from src/exit_codes.rs's");
}
