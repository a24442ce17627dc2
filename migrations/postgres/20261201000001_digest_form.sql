-- Which form each resource row's secret digests are in: `none`, `hmac` (keyed by the
-- environment's state key) or `legacy` (plain SHA-256, written before state keys; the next
-- apply that has the values rewrites them). Every digest written before this migration is legacy.
ALTER TABLE resources ADD COLUMN digest_form TEXT NOT NULL DEFAULT 'none';
UPDATE resources SET digest_form = 'legacy' WHERE properties LIKE '%"$sensitive"%' OR outputs LIKE '%"$sensitive"%';
