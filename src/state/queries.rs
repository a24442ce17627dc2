//! The queries both state backends run, written once with `?` placeholders; PostgreSQL's store
//! numbers them (`$1`, `$2`...) with [`numbered`]. Only locking and dialect details (row locks,
//! insertion order, advisory locks) stay in each backend.

/// The environment's serial.
pub const SERIAL: &str = "SELECT serial FROM environments WHERE env = ?";
/// Every resource of the environment.
pub const RESOURCES: &str = "SELECT address, kind, remote_id, properties, outputs, dependencies, status FROM resources WHERE env = ? ORDER BY address";
/// The audit chain's last sequence number and hash.
pub const AUDIT_HEAD: &str = "SELECT audit_seq, audit_head FROM environments WHERE env = ?";
/// Records a resource (applied, or marked in flight).
pub const UPSERT_RESOURCE: &str = "INSERT INTO resources (env, address, kind, remote_id, properties, outputs, dependencies, status, digest_form, updated_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (env, address) DO UPDATE SET kind = excluded.kind, remote_id = excluded.remote_id,
                       properties = excluded.properties, outputs = excluded.outputs,
                       dependencies = excluded.dependencies, status = excluded.status,
                       digest_form = excluded.digest_form, updated_at = excluded.updated_at";
/// Forgets a resource.
pub const DELETE_RESOURCE: &str = "DELETE FROM resources WHERE env = ? AND address = ?";
/// A resource's row takes another address (`state mv`).
pub const MOVE_RESOURCE: &str =
    "UPDATE resources SET address = ?, updated_at = ? WHERE env = ? AND address = ?";
/// A resource's rollout record follows it to its new address.
pub const MOVE_ROLLOUT: &str = "UPDATE rollouts SET address = ? WHERE env = ? AND address = ?";
/// Dependencies on a moved resource follow it (they are JSON lists of address strings, and
/// an address holds no character JSON escapes, so the quoted form matches whole entries only).
pub const MOVE_DEPENDENCIES: &str =
    "UPDATE resources SET dependencies = REPLACE(dependencies, ?, ?) WHERE env = ?";
/// Appends an audit event.
pub const INSERT_EVENT: &str =
    "INSERT INTO audit_events (env, seq, body, hash) VALUES (?, ?, ?, ?)";
/// Moves the chain head and, for a change, the serial.
pub const ADVANCE: &str =
    "UPDATE environments SET audit_seq = ?, audit_head = ?, serial = serial + ? WHERE env = ?";
/// Marks a resource in flight, keeping its last applied values.
pub const MARK_IN_FLIGHT: &str = "INSERT INTO resources (env, address, kind, remote_id, properties, outputs, dependencies, status, digest_form, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (env, address) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at,
               remote_id = CASE WHEN excluded.status = 'creating' THEN excluded.remote_id ELSE resources.remote_id END";
/// Extends the lease of a held lock.
pub const RENEW_LOCK: &str = "UPDATE locks SET lease_until = ? WHERE env = ? AND id = ?";
/// Releases a lock this run holds.
pub const UNLOCK: &str = "DELETE FROM locks WHERE env = ? AND id = ?";
/// Removes whatever lock the environment has.
pub const BREAK_LOCK: &str = "DELETE FROM locks WHERE env = ?";
/// Saves a rollout record, keeping a pending request.
pub const SAVE_ROLLOUT: &str = "INSERT INTO rollouts (env, address, body, request, updated_at) VALUES (?, ?, ?, NULL, ?) ON CONFLICT (env, address) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at";
/// Every rollout record of the environment.
pub const ROLLOUTS: &str =
    "SELECT address, body, request FROM rollouts WHERE env = ? ORDER BY address";
/// Leaves a steering request for a running rollout.
pub const REQUEST_ROLLOUT: &str = "UPDATE rollouts SET request = ? WHERE env = ? AND address = ?";
/// Clears a taken steering request.
pub const CLEAR_REQUEST: &str = "UPDATE rollouts SET request = NULL WHERE env = ? AND address = ?";
/// The lock row of the environment.
pub const LOCK_ROW: &str =
    "SELECT id, holder, host, pid, operation, since, lease_until FROM locks WHERE env = ?";
/// Creates the environment's row once.
pub const ENSURE_ENV: &str =
    "INSERT INTO environments (env) VALUES (?) ON CONFLICT (env) DO NOTHING";
/// The pending steering request of a rollout (PostgreSQL adds `FOR UPDATE`).
pub const ROLLOUT_REQUEST: &str = "SELECT request FROM rollouts WHERE env = ? AND address = ?";

/// A query's `?` placeholders as PostgreSQL's `$1, $2...` (no query here has a `?` inside a
/// string literal).
pub fn numbered(sql: &str) -> sqlx::AssertSqlSafe<String> {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    sqlx::AssertSqlSafe(out)
}

/// [`numbered`], with a row lock held to the end of the transaction.
pub fn numbered_for_update(sql: &str) -> sqlx::AssertSqlSafe<String> {
    let sqlx::AssertSqlSafe(q) = numbered(sql);
    sqlx::AssertSqlSafe(format!("{q} FOR UPDATE"))
}

/// Forgets every output of an environment (before the new set is written).
pub const DELETE_OUTPUTS: &str = "DELETE FROM outputs WHERE env = ?";
/// Records one output.
pub const INSERT_OUTPUT: &str = "INSERT INTO outputs (env, name, body) VALUES (?, ?, ?)";
/// An environment's outputs, by name.
pub const OUTPUTS: &str = "SELECT name, body FROM outputs WHERE env = ? ORDER BY name";

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_in_order() {
        let sqlx::AssertSqlSafe(q) = super::numbered(super::RENEW_LOCK);
        assert_eq!(
            q,
            "UPDATE locks SET lease_until = $1 WHERE env = $2 AND id = $3"
        );
        let sqlx::AssertSqlSafe(q) = super::numbered_for_update(super::AUDIT_HEAD);
        assert_eq!(
            q,
            "SELECT audit_seq, audit_head FROM environments WHERE env = $1 FOR UPDATE"
        );
    }
}
