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

/// Each row of the main table states the key's default as the code has it: a scalar default
/// appears in the row's default column (unset, empty and list defaults are described in words).
#[test]
fn the_reference_states_the_defaults_the_code_has() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .expect("docs/configuration.md exists");
    let main_table = doc
        .split("## Keys")
        .nth(1)
        .unwrap()
        .split("### ")
        .next()
        .unwrap();
    let rows: std::collections::BTreeMap<&str, &str> = main_table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let mut cells = l.split(" | ");
            let key = cells.next()?.trim_start_matches("| ").trim_matches('`');
            Some((key, cells.next()?))
        })
        .collect();
    let mut wrong = Vec::new();
    for (key, default) in lakests_config::known_keys() {
        let Some(cell) = rows.get(key.as_str()) else {
            continue;
        };
        let expected = match &default {
            serde_json::Value::String(s) if !s.is_empty() => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        let shown = cell.replace('_', "");
        let in_backticks = cell.split('`').nth(1).unwrap_or("");
        // Durations may be written another way ("60s" for the code's "1m").
        let same_duration = humantime::parse_duration(&expected)
            .ok()
            .is_some_and(|d| humantime::parse_duration(in_backticks).ok() == Some(d));
        if !same_duration
            && !cell.contains(&format!("`{expected}`"))
            && !shown.contains(&format!("`{expected}`"))
        {
            wrong.push(format!("{key}: code {expected:?}, docs {cell:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "defaults in docs/configuration.md that differ from the code:\n{}",
        wrong.join("\n")
    );
}
