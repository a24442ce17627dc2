//! Secret digest benchmark (not a timed test): digesting and comparing 100 sensitive values, as
//! a plan of 100 secrets does, with the plain SHA-256 older releases used ("before") and with
//! HMAC-SHA256 under a state key ("after"). Prints microseconds per 100 values.
//!
//! Run with `cargo bench --bench digests`.

use std::time::Instant;

use converge::model::Value;
use converge::model::digest::{Keyring, StateKey};
use sha2::{Digest, Sha256};

/// What older releases stored: the plain SHA-256 of the canonical JSON.
fn before(v: &Value) -> String {
    let canonical = serde_json::to_string(&v.to_plain_json()).unwrap();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn main() {
    let values: Vec<Value> = (0..100)
        .map(|i| Value::str(format!("postgres://app:secret-{i}@db.internal:5432/app")))
        .collect();
    let keyring = Keyring::new(StateKey::new(b"bench-state-key-0123456789abcdef"));
    let rounds = 2000;

    let stored_before: Vec<String> = values.iter().map(before).collect();
    let started = Instant::now();
    let mut equal = 0;
    for _ in 0..rounds {
        for (v, d) in values.iter().zip(&stored_before) {
            equal += usize::from(&before(v) == d);
        }
    }
    let before_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    assert_eq!(equal, 100 * rounds);

    let stored_after: Vec<String> = values.iter().map(|v| keyring.digest(v)).collect();
    let started = Instant::now();
    let mut equal = 0;
    for _ in 0..rounds {
        for (v, d) in values.iter().zip(&stored_after) {
            equal += usize::from(keyring.matches(d, v).unwrap());
        }
    }
    let after_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    assert_eq!(equal, 100 * rounds);

    println!("digest + compare of 100 sensitive values ({rounds} rounds):");
    println!("  before (plain SHA-256):           {before_us:8.1} µs");
    println!("  after  (HMAC-SHA256, state key):  {after_us:8.1} µs");
}
