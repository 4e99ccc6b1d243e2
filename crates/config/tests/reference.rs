//! The configuration reference (docs/configuration.md) lists every key the code knows, and
//! names no key the code does not know.

use std::collections::BTreeSet;

#[test]
fn the_reference_lists_exactly_the_known_keys() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .expect("docs/configuration.md exists");
    let known: BTreeSet<String> = lakests_config::known_keys()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let documented: BTreeSet<String> = doc
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .filter(|k| k.contains('.') || !k.contains(' '))
        .collect();
    let top_level_sections = ["## Keys"];
    assert!(top_level_sections.iter().all(|s| doc.contains(s)));
    let missing: Vec<_> = known.iter().filter(|k| !documented.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "keys missing from docs/configuration.md: {missing:?}"
    );
    // Rows of the main table must be real keys (sub-tables list provider fields by bare name).
    let main_table = doc
        .split("## Keys")
        .nth(1)
        .unwrap()
        .split("### ")
        .next()
        .unwrap();
    let unknown: Vec<_> = main_table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1))
        .filter(|k| !known.contains(*k))
        .collect();
    assert!(
        unknown.is_empty(),
        "documented keys the code does not know: {unknown:?}"
    );
}
