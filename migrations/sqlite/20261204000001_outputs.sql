-- The environment's outputs as the last apply left them (`converge output`), each a JSON body
-- {value, sensitive, description}; a sensitive value is kept only as its digest.
CREATE TABLE outputs (
    env   TEXT NOT NULL,
    name  TEXT NOT NULL,
    body  TEXT NOT NULL,
    PRIMARY KEY (env, name)
);
