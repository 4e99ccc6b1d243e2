//! `application/x-www-form-urlencoded` parameters (query strings and form bodies) with limits:
//! a known set of names, each with a maximum length, no repeats (RFC 6749 §3.1), and empty
//! values treated as absent. Error texts name the parameter, never its value.

/// Largest query string or form body the IdP reads, in bytes.
pub(crate) const MAX_PARAMS_BYTES: usize = 16 * 1024;
/// Most parameters (known or not) in one request.
const MAX_PARAM_COUNT: usize = 64;

/// Why parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParamError {
    #[error("the request parameters are larger than {MAX_PARAMS_BYTES} bytes")]
    TooLarge,
    #[error("the request has more than {MAX_PARAM_COUNT} parameters")]
    TooMany,
    #[error("parameter {0} is longer than {1} bytes")]
    TooLong(&'static str, usize),
    #[error("parameter {0} is given more than once")]
    Repeated(&'static str),
}

/// Parsed parameters: only the names the endpoint knows. A list, not a map: an endpoint knows
/// a dozen names at most, and a map cost two growths and a SipHash per name on every request.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(&'static str, String)>);

impl Params {
    /// Parses `raw` keeping the names of `spec` (name, maximum length in bytes).
    pub(crate) fn parse(raw: &[u8], spec: &[(&'static str, usize)]) -> Result<Self, ParamError> {
        if raw.len() > MAX_PARAMS_BYTES {
            return Err(ParamError::TooLarge);
        }
        let mut out: Vec<(&'static str, String)> = Vec::with_capacity(spec.len());
        for (i, (name, value)) in url::form_urlencoded::parse(raw).enumerate() {
            if i >= MAX_PARAM_COUNT {
                return Err(ParamError::TooMany);
            }
            let Some((known, max)) = spec.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            if value.len() > *max {
                return Err(ParamError::TooLong(known, *max));
            }
            if out.iter().any(|(n, _)| n == known) {
                return Err(ParamError::Repeated(known));
            }
            // An empty value is remembered too, so that a second (non-empty) copy still counts
            // as a repeat.
            out.push((*known, value.into_owned()));
        }
        out.retain(|(_, v)| !v.is_empty());
        Ok(Self(out))
    }

    /// The value of `name`, if given and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &[(&str, usize)] = &[("a", 5), ("b", 3)];

    #[test]
    fn known_names_are_kept_and_unknown_ones_ignored() {
        let p = Params::parse(b"a=x%20y&zzz=1&b=", SPEC).unwrap();
        assert_eq!(p.get("a"), Some("x y"));
        assert_eq!(p.get("b"), None, "an empty value counts as absent");
        assert_eq!(p.get("zzz"), None);
    }

    #[test]
    fn repeats_long_values_and_floods_are_refused_without_the_value() {
        assert_eq!(
            Params::parse(b"a=1&a=2", SPEC).unwrap_err(),
            ParamError::Repeated("a")
        );
        assert_eq!(
            Params::parse(b"b=&b=2", SPEC).unwrap_err(),
            ParamError::Repeated("b")
        );
        let err = Params::parse(b"b=secret", SPEC).unwrap_err();
        assert_eq!(err, ParamError::TooLong("b", 3));
        assert!(!err.to_string().contains("secret"));
        let flood = "x=1&".repeat(MAX_PARAM_COUNT + 1);
        assert_eq!(
            Params::parse(flood.as_bytes(), SPEC).unwrap_err(),
            ParamError::TooMany
        );
        let big = vec![b'x'; MAX_PARAMS_BYTES + 1];
        assert_eq!(Params::parse(&big, SPEC).unwrap_err(), ParamError::TooLarge);
    }
}
