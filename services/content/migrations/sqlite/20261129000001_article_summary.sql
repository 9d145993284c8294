-- Lists show a summary, never the body: stored at write time so a page
-- never reads (or ships) whole bodies. Existing rows are backfilled with the
-- rule as crate::summary (280 characters, "…" when cut; SQL trims only
-- spaces before the ellipsis).
ALTER TABLE articles ADD COLUMN summary TEXT NOT NULL DEFAULT '';
UPDATE articles SET summary = CASE
    WHEN length(body) > 280 THEN rtrim(substr(body, 1, 279)) || '…'
    ELSE body END;
