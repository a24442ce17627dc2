-- Rollouts per service: progress as JSON (written by the controller), and a request column
-- other processes set (promote, promote_full, abort) without the write lock.
CREATE TABLE rollouts (
    env         TEXT NOT NULL,
    address     TEXT NOT NULL,
    body        TEXT NOT NULL,
    request     TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (env, address)
);
