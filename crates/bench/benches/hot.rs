//! Criterion benches of the hot functions: lakeFS token mint and verify, claims flattening.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lakests_core::claims;
use lakests_core::token::TokenIssuer;
use secrecy::SecretString;
use serde_json::json;

fn tokens(c: &mut Criterion) {
    let issuer = TokenIssuer::new(&SecretString::from(
        "bench-secret-key-of-a-reasonable-length".to_owned(),
    ));
    c.bench_function("token_mint_hs256", |b| {
        b.iter(|| issuer.mint(black_box("alice"), 1_700_000_000, 3600))
    });
    let (token, _) = issuer.mint("alice", 1_700_000_000, 3600).expect("mint");
    c.bench_function("token_verify_hs256", |b| {
        b.iter(|| issuer.verify(black_box(&token), 1_700_000_100))
    });
}

fn flatten(c: &mut Criterion) {
    let v = json!({
        "iss": "https://idp.example.com", "sub": "248289761001", "aud": ["lakests"], "exp": 1_700_003_600,
        "iat": 1_700_000_000, "email": "alice@example.com", "email_verified": true, "name": "Alice",
        "groups": ["admins", "data", "developers"], "address": {"country": "NL"},
    });
    let map = v.as_object().expect("object").clone();
    c.bench_function("claims_flatten", |b| {
        b.iter(|| claims::flatten(black_box(&map)))
    });
}

criterion_group!(benches, tokens, flatten);
criterion_main!(benches);
