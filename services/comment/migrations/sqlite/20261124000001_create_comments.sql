CREATE TABLE comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id INTEGER NOT NULL,
    author_id  INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Serves both an article's comment page (newest first) and the counts of
-- many articles, without touching the table rows.
CREATE INDEX comments_article ON comments (article_id, id);
