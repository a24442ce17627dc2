//! Taking and keeping an environment's write lock: retries with backoff up to a deadline,
//! and a lease renewed in the background on a store of its own, so a long step never lets it
//! lapse (SQLite's lease; PostgreSQL's advisory lock needs no renewal but keeps its row fresh).

use std::time::Duration;

use super::{LockInfo, Result, StateError, StateStore};

/// How long a lock's lease lasts before another run may take it over as stale.
pub const LEASE: Duration = Duration::from_secs(60);

/// Tries to take the lock until `timeout` has passed, backing off from 250 ms to 2 s between
/// tries; `on_wait` is called once, with the holder, when it starts waiting. Returns the stale
/// lock it took over, if any; after the deadline, the holder's [`StateError::Locked`].
pub async fn acquire(
    store: &dyn StateStore,
    info: &LockInfo,
    timeout: Duration,
    mut on_wait: impl FnMut(&LockInfo),
) -> Result<Option<LockInfo>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut told = false;
    let mut pause = Duration::from_millis(250);
    loop {
        match store.try_lock(info).await {
            Ok(previous) => return Ok(previous),
            Err(StateError::Locked { lock, .. })
                if tokio::time::Instant::now() + pause <= deadline =>
            {
                if !told {
                    on_wait(&lock);
                    told = true;
                }
                tokio::time::sleep(pause).await;
                pause = next_pause(pause);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The backoff after `pause`: doubled, at most 2 s.
fn next_pause(pause: Duration) -> Duration {
    (pause * 2).min(Duration::from_secs(2))
}

/// Renews the lease of lock `id` every third of [`LEASE`] on `store` (a connection of its
/// own) until the returned task is aborted.
pub fn renew_in_background(store: Box<dyn StateStore>, id: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(LEASE / 3).await;
            let until =
                (chrono::Utc::now() + LEASE).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            if let Err(e) = store.renew_lock(&id, &until).await {
                tracing::warn!("could not renew the state lock: {e}");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_two_seconds() {
        let mut p = Duration::from_millis(250);
        let mut seen = Vec::new();
        for _ in 0..5 {
            p = next_pause(p);
            seen.push(p.as_millis());
        }
        assert_eq!(seen, [500, 1000, 2000, 2000, 2000]);
    }
}
