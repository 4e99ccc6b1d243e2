//! Property tests of what `lakests login` parses from outside (issue 12): the callback query,
//! redirect URIs, the server's authorization URL, and what reaches the terminal. On generated
//! input: no panic, bounded time.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::callback::parse_query;
use crate::flow::{check_authorization_url, strip_controls};
use crate::redirect::is_registered;

const BOUND: Duration = Duration::from_secs(2);

fn query_part() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("code"),
            Just("state"),
            Just("error"),
            Just("error_description"),
            Just("iss"),
        ]
        .prop_map(str::to_owned),
        "[a-z_%&=+]{0,10}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_callback_query_parses_or_is_refused(q in ".{0,500}") {
        let started = Instant::now();
        let _ = parse_query(&q);
        prop_assert!(started.elapsed() < BOUND);
    }

    /// Generated queries: a repeated known parameter is always refused, values are decoded.
    #[test]
    fn generated_callback_queries_keep_one_value_per_parameter(
        pairs in prop::collection::vec((query_part(), ".{0,20}"), 0..8)
    ) {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        let known = ["code", "state", "error", "error_description", "iss"];
        let repeated = known.iter().any(|k| pairs.iter().filter(|(n, _)| n == k).count() > 1);
        match parse_query(&q) {
            Err(_) => prop_assert!(repeated),
            Ok(r) => {
                prop_assert!(!repeated);
                if let Some((_, v)) = pairs.iter().find(|(n, _)| n == "code") {
                    prop_assert_eq!(r.code.as_deref(), Some(v.as_str()));
                }
            }
        }
    }

    #[test]
    fn redirect_matching_never_panics_and_exact_matches_match(
        candidate in "(http|https|file)://(127\\.0\\.0\\.1|\\[::1\\]|localhost|evil\\.example)(:[0-9]{1,5})?(/[a-z]{0,6}){0,3}",
        registered in prop::collection::vec(".{0,40}", 0..4),
        any_port in any::<bool>(),
    ) {
        if let Ok(url) = url::Url::parse(&candidate) {
            let started = Instant::now();
            let _ = is_registered(&url, &registered, any_port);
            prop_assert!(started.elapsed() < BOUND);
            prop_assert!(is_registered(&url, &[url.to_string()], any_port));
        }
    }

    /// Whatever URL a hostile server sends, only the provider's origin over http(s) passes.
    #[test]
    fn only_the_providers_origin_is_ever_opened(url in ".{0,120}", path in "(/[a-z?=&]{0,10}){0,3}") {
        let endpoint = url::Url::parse("https://idp.example:8443/authorize").unwrap();
        let started = Instant::now();
        if check_authorization_url(&url, &endpoint).is_ok() {
            let parsed = url::Url::parse(&url).unwrap();
            prop_assert_eq!(parsed.origin(), endpoint.origin());
        }
        let good = format!("https://idp.example:8443{path}");
        if url::Url::parse(&good).is_ok_and(|u| u.username().is_empty()) {
            prop_assert!(check_authorization_url(&good, &endpoint).is_ok());
        }
        prop_assert!(started.elapsed() < BOUND);
    }

    #[test]
    fn nothing_printed_carries_a_control_character(s in ".{0,80}|[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}a-z\\n]{0,40}") {
        let out = strip_controls(&s);
        prop_assert!(!out.chars().any(|c| c != '\n' && c.is_control()));
    }
}
