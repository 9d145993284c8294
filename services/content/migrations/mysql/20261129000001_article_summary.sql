-- Lists show a summary, never the body: stored at write time so a page
-- never reads (or ships) whole bodies. Existing rows are backfilled with the
-- rule as crate::summary (280 characters, "…" when cut; SQL trims only
-- spaces before the ellipsis).
ALTER TABLE articles ADD COLUMN summary VARCHAR(280) NOT NULL DEFAULT '';
UPDATE articles SET summary = CASE
    WHEN CHAR_LENGTH(body) > 280 THEN CONCAT(TRIM(TRAILING FROM LEFT(body, 279)), '…')
    ELSE body END;
