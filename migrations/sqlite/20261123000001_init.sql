-- Environments: serial and the audit chain head.
CREATE TABLE environments (
    env         TEXT PRIMARY KEY,
    serial      INTEGER NOT NULL DEFAULT 0,
    audit_seq   INTEGER NOT NULL DEFAULT 0,
    audit_head  TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000'
);

-- One row per managed resource, as last applied.
CREATE TABLE resources (
    env           TEXT NOT NULL,
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

-- The write lock: at most one row per environment.
CREATE TABLE locks (
    env          TEXT PRIMARY KEY,
    id           TEXT NOT NULL,
    holder       TEXT NOT NULL,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    operation    TEXT NOT NULL,
    since        TEXT NOT NULL,
    lease_until  TEXT NOT NULL
);

-- The append-only, hash-chained audit trail.
CREATE TABLE audit_events (
    env          TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    body         TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (env, seq)
);
