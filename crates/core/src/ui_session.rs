//! lakeFS's web-UI session cookie, `internal_auth_session` (shared/reference/UI-SSO.md §2-3).
//!
//! lakeFS OSS keeps its UI session in a gorilla `sessions.CookieStore` whose only key is the raw
//! `auth.encrypt.secret_key`: the session values `map[interface{}]interface{}{"token": JWT}` are
//! gob-encoded, then wrapped by gorilla/securecookie v1.1.2 (timestamp and HMAC-SHA256, no
//! encryption). Its auth middleware accepts any such cookie whose `token` is a lakeFS login JWT,
//! so lakests can log a browser in to the lakeFS UI by writing exactly these bytes.
//!
//! Only the one shape lakeFS uses is written and read; anything else is refused, never guessed
//! at. Go itself checks both directions in `tests/gorilla_session.rs`.

use aws_lc_rs::{constant_time, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;

/// The cookie lakeFS's auth middleware reads (`pkg/auth/request_auth.go`).
pub const COOKIE_NAME: &str = "internal_auth_session";
/// The session value key holding the login token.
pub const TOKEN_KEY: &str = "token";
/// securecookie's codec max age, which lakeFS keeps: 30 days.
pub const MAX_AGE_SECS: i64 = 2_592_000;
/// securecookie's maximum encoded length.
pub const MAX_LEN: usize = 4096;

/// Why a cookie value could not be written or read. Never carries the secret or the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionCookieError {
    /// The encoded cookie would be (or is) longer than securecookie allows.
    #[error("session cookie longer than {MAX_LEN} characters")]
    TooLong,
    /// Not the base64 / `ts|value|mac` envelope.
    #[error("session cookie is malformed")]
    Malformed,
    /// The HMAC does not match: another key, or altered.
    #[error("session cookie signature does not match")]
    BadSignature,
    /// Older than [`MAX_AGE_SECS`].
    #[error("session cookie expired")]
    Expired,
    /// The payload is not lakeFS's `map[interface{}]interface{}` with a string `token`.
    #[error("session cookie does not hold a lakeFS session")]
    NotASession,
}

/// Encodes a lakeFS UI session holding `token`, timestamped `now_unix`, signed with `secret`.
/// The result is the cookie's value, as lakeFS's `CookieStore.Save` would write it.
pub fn encode(secret: &[u8], token: &str, now_unix: i64) -> Result<String, SessionCookieError> {
    let value = URL_SAFE.encode(gob_session(token));
    let signed = format!("{COOKIE_NAME}|{now_unix}|{value}");
    let mac = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, secret),
        signed.as_bytes(),
    );
    let mut envelope = signed.into_bytes().split_off(COOKIE_NAME.len() + 1);
    envelope.push(b'|');
    envelope.extend_from_slice(mac.as_ref());
    let cookie = URL_SAFE.encode(envelope);
    if cookie.len() > MAX_LEN {
        return Err(SessionCookieError::TooLong);
    }
    Ok(cookie)
}

/// Decodes a cookie value the way lakeFS's middleware does (securecookie's `Decode` into a
/// `map[interface{}]interface{}`) and returns the session's `token`. A timestamp in the future
/// is accepted, as securecookie accepts it.
pub fn decode(secret: &[u8], cookie: &str, now_unix: i64) -> Result<String, SessionCookieError> {
    if cookie.len() > MAX_LEN {
        return Err(SessionCookieError::TooLong);
    }
    let raw = URL_SAFE
        .decode(cookie)
        .map_err(|_| SessionCookieError::Malformed)?;
    let mut parts = raw.splitn(3, |b| *b == b'|');
    let (Some(ts), Some(value), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SessionCookieError::Malformed);
    };
    let mut signed = Vec::with_capacity(COOKIE_NAME.len() + ts.len() + value.len() + 2);
    signed.extend_from_slice(COOKIE_NAME.as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(ts);
    signed.push(b'|');
    signed.extend_from_slice(value);
    let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), &signed);
    if constant_time::verify_slices_are_equal(expected.as_ref(), mac).is_err() {
        return Err(SessionCookieError::BadSignature);
    }
    let ts: i64 = std::str::from_utf8(ts)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(SessionCookieError::Malformed)?;
    if ts < now_unix.saturating_sub(MAX_AGE_SECS) {
        return Err(SessionCookieError::Expired);
    }
    let gob = URL_SAFE
        .decode(value)
        .map_err(|_| SessionCookieError::Malformed)?;
    gob_session_token(&gob).ok_or(SessionCookieError::NotASession)
}

// ---- gob, only as far as `map[interface{}]interface{}{string: string}` needs ----------------

/// The id Go's encoder gives the first type it defines in a fresh stream: 64 with the Go that
/// builds lakeFS v1.84.0 (1.26; `tests/gorilla_session.rs` checks it byte for byte), 65 with
/// older ones. Decoders accept any id from 64 up, and so does ours.
const FIRST_TYPE_ID: i64 = 64;
/// gob's predeclared id of `string`.
const STRING_TYPE_ID: i64 = 6;
/// gob's predeclared id of `interface{}`.
const INTERFACE_TYPE_ID: i64 = 8;

fn put_uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
        return;
    }
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push((256 - (8 - skip)) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

fn put_int(out: &mut Vec<u8>, v: i64) {
    let zigzag = if v < 0 {
        ((!v as u64) << 1) | 1
    } else {
        (v as u64) << 1
    };
    put_uint(out, zigzag);
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_uint(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A message: its byte count, then the body.
fn put_message(out: &mut Vec<u8>, body: &[u8]) {
    put_uint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// The wireType message that defines `map[interface{}]interface{}` under `id`.
fn map_type_definition(id: i64) -> Vec<u8> {
    let mut def = vec![0x04, 0x01, 0x02]; // wireType.MapT, mapType.CommonType, CommonType.Id
    put_int(&mut def, id);
    def.extend_from_slice(&[0x00, 0x01]); // end CommonType, mapType.Key
    put_int(&mut def, INTERFACE_TYPE_ID);
    def.push(0x01); // mapType.Elem
    put_int(&mut def, INTERFACE_TYPE_ID);
    def.extend_from_slice(&[0x00, 0x00]); // end mapType, end wireType
    def
}

/// An `interface{}` holding a string: type name, type id, byte count, then the value.
fn put_interface_string(out: &mut Vec<u8>, s: &str) {
    put_string(out, b"string");
    put_int(out, STRING_TYPE_ID);
    let mut value = vec![0x00]; // a non-struct value's singleton field delta
    put_string(&mut value, s.as_bytes());
    put_string(out, &value);
}

fn gob_session(token: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + token.len());
    let mut def = Vec::new();
    put_int(&mut def, -FIRST_TYPE_ID);
    def.extend_from_slice(&map_type_definition(FIRST_TYPE_ID));
    put_message(&mut out, &def);

    let mut value = Vec::new();
    put_int(&mut value, FIRST_TYPE_ID);
    value.push(0x00);
    put_uint(&mut value, 1);
    put_interface_string(&mut value, TOKEN_KEY);
    put_interface_string(&mut value, token);
    put_message(&mut out, &value);
    out
}

/// A cursor over untrusted gob bytes: every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(*first)
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    fn uint(&mut self) -> Option<u64> {
        let first = self.byte()?;
        if first < 128 {
            return Some(u64::from(first));
        }
        let n = 256 - u16::from(first);
        if n == 0 || n > 8 {
            return None;
        }
        let mut v = 0u64;
        for b in self.take(u64::from(n))? {
            v = (v << 8) | u64::from(*b);
        }
        Some(v)
    }

    fn int(&mut self) -> Option<i64> {
        let u = self.uint()?;
        let magnitude = (u >> 1) as i64;
        Some(if u & 1 == 1 { !magnitude } else { magnitude })
    }

    fn message(&mut self) -> Option<Reader<'a>> {
        let len = self.uint()?;
        Some(Reader {
            buf: self.take(len)?,
        })
    }

    /// An `interface{}` value: `Some(None)` for a nil interface, else the type name, the
    /// concrete type id and the value's bytes.
    fn interface(&mut self) -> Option<Option<(&'a [u8], i64, Reader<'a>)>> {
        let name_len = self.uint()?;
        if name_len == 0 {
            return Some(None);
        }
        let name = self.take(name_len)?;
        let id = self.int()?;
        let value = self.message()?;
        Some(Some((name, id, value)))
    }
}

/// A string held by an interface value: type `string`, singleton delta, then the bytes.
fn interface_string(entry: Option<(&[u8], i64, Reader<'_>)>) -> Option<String> {
    let (name, id, mut value) = entry?;
    if name != b"string" || id != STRING_TYPE_ID || value.byte()? != 0x00 {
        return None;
    }
    let len = value.uint()?;
    let s = value.take(len)?;
    if !value.buf.is_empty() {
        return None;
    }
    String::from_utf8(s.to_vec()).ok()
}

/// The `token` of a gob-encoded `map[interface{}]interface{}`, as lakeFS's middleware reads it:
/// present, a string and not empty.
fn gob_session_token(gob: &[u8]) -> Option<String> {
    let mut stream = Reader { buf: gob };
    let mut def = stream.message()?;
    let id = def.int()?.checked_neg()?;
    // Go numbers user types from 64 up, per process; any is fine as long as it is this map.
    if id < 64 || def.buf != map_type_definition(id).as_slice() {
        return None;
    }
    let mut value = stream.message()?;
    if !stream.buf.is_empty() || value.int()? != id || value.byte()? != 0x00 {
        return None;
    }
    let entries = value.uint()?;
    let mut token = None;
    for _ in 0..entries {
        let key = interface_string(value.interface()?);
        let elem = value.interface()?;
        if key.as_deref() == Some(TOKEN_KEY) {
            token = Some(interface_string(elem)?);
        }
    }
    if !value.buf.is_empty() {
        return None;
    }
    token.filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-shared-secret-of-at-least-32-bytes!";
    const NOW: i64 = 1_800_000_000;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn gob_payload_matches_the_bytes_go_1_26_writes_for_token_x() {
        // What gorilla/securecookie's gob encoder writes for {"token": "x"} under Go 1.26: the
        // map type gets id 64 (`7f` defines it, `ff 80` uses it).
        let want = hex(
            "0d 7f 04 01 02 ff 80 00 01 10 01 10 00 00 20 ff 80 00 01 06 73 74 72 69 6e 67 \
             0c 07 00 05 74 6f 6b 65 6e 06 73 74 72 69 6e 67 0c 03 00 01 78",
        );
        assert_eq!(gob_session("x"), want);
    }

    #[test]
    fn a_payload_from_an_older_go_with_type_id_65_is_read() {
        // UI-SSO.md §3: the 48-byte stream Go 1.19 wrote for {"token": "x"}.
        let older = hex(
            "0e ff 81 04 01 02 ff 82 00 01 10 01 10 00 00 20 ff 82 00 01 06 73 74 72 69 6e 67 \
             0c 07 00 05 74 6f 6b 65 6e 06 73 74 72 69 6e 67 0c 03 00 01 78",
        );
        assert_eq!(gob_session_token(&older).as_deref(), Some("x"));
    }

    #[test]
    fn uints_and_ints_use_gobs_byte_count_form() {
        let enc = |v: u64| {
            let mut o = Vec::new();
            put_uint(&mut o, v);
            o
        };
        assert_eq!(enc(127), vec![0x7f]);
        assert_eq!(enc(250), vec![0xff, 0xfa]);
        assert_eq!(enc(283), vec![0xfe, 0x01, 0x1b]);
        let mut o = Vec::new();
        put_int(&mut o, 65);
        put_int(&mut o, -65);
        assert_eq!(o, vec![0xff, 0x82, 0xff, 0x81]);
        for v in [0u64, 1, 127, 128, 255, 256, 65_535, 1 << 40, u64::MAX] {
            assert_eq!(Reader { buf: &enc(v) }.uint(), Some(v));
        }
    }

    #[test]
    fn a_cookie_round_trips_with_the_same_key() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.sig";
        let cookie = encode(SECRET, token, NOW).unwrap();
        assert_eq!(decode(SECRET, &cookie, NOW).unwrap(), token);
        // A long token needs multi-byte lengths everywhere.
        let long = "t".repeat(1500);
        let cookie = encode(SECRET, &long, NOW).unwrap();
        assert_eq!(decode(SECRET, &cookie, NOW + 5).unwrap(), long);
    }

    #[test]
    fn another_key_an_altered_cookie_and_an_old_one_are_refused() {
        let cookie = encode(SECRET, "tok", NOW).unwrap();
        assert_eq!(
            decode(b"another-secret-of-at-least-32-bytes!!", &cookie, NOW),
            Err(SessionCookieError::BadSignature)
        );
        let mut raw = URL_SAFE.decode(&cookie).unwrap();
        raw[3] ^= 1; // inside the timestamp
        assert_eq!(
            decode(SECRET, &URL_SAFE.encode(raw), NOW),
            Err(SessionCookieError::BadSignature)
        );
        assert_eq!(
            decode(SECRET, &cookie, NOW + MAX_AGE_SECS + 1),
            Err(SessionCookieError::Expired)
        );
        assert_eq!(decode(SECRET, &cookie, NOW + MAX_AGE_SECS).unwrap(), "tok");
        // securecookie has no minimum age: a timestamp in the future passes.
        assert_eq!(decode(SECRET, &cookie, NOW - 3600).unwrap(), "tok");
    }

    #[test]
    fn unpadded_base64_and_oversized_values_are_refused() {
        let cookie = encode(SECRET, "tok", NOW).unwrap();
        let unpadded = cookie.trim_end_matches('=');
        if unpadded != cookie {
            assert_eq!(
                decode(SECRET, unpadded, NOW),
                Err(SessionCookieError::Malformed)
            );
        }
        assert_eq!(
            decode(SECRET, &"A".repeat(MAX_LEN + 1), NOW),
            Err(SessionCookieError::TooLong)
        );
        assert_eq!(
            encode(SECRET, &"t".repeat(4000), NOW),
            Err(SessionCookieError::TooLong)
        );
        for junk in ["", "|||", "not base64!", &URL_SAFE.encode("1|2")] {
            assert_eq!(
                decode(SECRET, junk, NOW),
                Err(SessionCookieError::Malformed),
                "{junk:?}"
            );
        }
    }

    /// Signs any payload as securecookie would, to feed the gob reader hostile bytes.
    fn signed(gob: &[u8]) -> String {
        let value = URL_SAFE.encode(gob);
        let text = format!("{COOKIE_NAME}|{NOW}|{value}");
        let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, SECRET), text.as_bytes());
        let mut env = format!("{NOW}|{value}|").into_bytes();
        env.extend_from_slice(mac.as_ref());
        URL_SAFE.encode(env)
    }

    #[test]
    fn a_session_from_another_type_id_is_read() {
        // Go numbers types per process: a lakeFS that encoded other types first uses a later id.
        let mut stream = Vec::new();
        let mut def = Vec::new();
        put_int(&mut def, -70);
        def.extend_from_slice(&map_type_definition(70));
        put_message(&mut stream, &def);
        let mut value = Vec::new();
        put_int(&mut value, 70);
        value.push(0);
        put_uint(&mut value, 2);
        put_interface_string(&mut value, "other");
        put_interface_string(&mut value, "ignored");
        put_interface_string(&mut value, TOKEN_KEY);
        put_interface_string(&mut value, "the-token");
        put_message(&mut stream, &value);
        assert_eq!(decode(SECRET, &signed(&stream), NOW).unwrap(), "the-token");
    }

    #[test]
    fn sessions_of_other_shapes_are_refused_without_panicking() {
        let good = gob_session("tok");
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            gob_session(""),                  // empty token
            good[..good.len() - 1].to_vec(),  // truncated
            [good.clone(), vec![0]].concat(), // trailing bytes
            good.iter().map(|b| b ^ 0x5a).collect(),
        ];
        // Every prefix and every single-byte change: refused or read, never a panic.
        for i in 0..good.len() {
            cases.push(good[..i].to_vec());
            for flip in [0x01u8, 0x80, 0xff] {
                let mut c = good.clone();
                c[i] ^= flip;
                cases.push(c);
            }
        }
        for case in &cases[..5] {
            assert_eq!(
                decode(SECRET, &signed(case), NOW),
                Err(SessionCookieError::NotASession)
            );
        }
        for case in &cases {
            let _ = decode(SECRET, &signed(case), NOW);
        }
        // A map without a token.
        let mut stream = Vec::new();
        let mut def = Vec::new();
        put_int(&mut def, -64);
        def.extend_from_slice(&map_type_definition(64));
        put_message(&mut stream, &def);
        let mut value = Vec::new();
        put_int(&mut value, 64);
        value.push(0);
        put_uint(&mut value, 1);
        put_interface_string(&mut value, "user");
        put_interface_string(&mut value, "alice");
        put_message(&mut stream, &value);
        assert_eq!(
            decode(SECRET, &signed(&stream), NOW),
            Err(SessionCookieError::NotASession)
        );
    }
}
