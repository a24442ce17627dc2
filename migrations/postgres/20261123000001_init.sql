-- Environments: serial and the audit chain head.
CREATE TABLE environments (
    env         TEXT PRIMARY KEY,
    serial      BIGINT NOT NULL DEFAULT 0,
    audit_seq   BIGINT NOT NULL DEFAULT 0,
    audit_head  TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000'
);

-- One row per managed resource, as last applied (status says when an operation is in flight).
CREATE TABLE resources (
    env           TEXT NOT NULL REFERENCES environments (env),
    address       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    remote_id     TEXT NOT NULL,
    properties    TEXT NOT NULL,
    outputs       TEXT NOT NULL,
    dependencies  TEXT NOT NULL,
    status        TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (env, address)
);

-- Who holds the write lock, for `lock status`; the lock itself is a session advisory lock.
CREATE TABLE locks (
    env          TEXT PRIMARY KEY REFERENCES environments (env),
    id           TEXT NOT NULL,
    holder       TEXT NOT NULL,
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    operation    TEXT NOT NULL,
    since        TEXT NOT NULL,
    lease_until  TEXT NOT NULL
);

-- The append-only, hash-chained audit trail; `id` keeps insertion order.
CREATE TABLE audit_events (
    id           BIGSERIAL PRIMARY KEY,
    env          TEXT NOT NULL REFERENCES environments (env),
    seq          BIGINT NOT NULL,
    body         TEXT NOT NULL,
    hash         TEXT NOT NULL,
    UNIQUE (env, seq)
);
