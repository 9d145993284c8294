CREATE TABLE articles (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    author_id  INTEGER NOT NULL,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- The list is newest first by id (the primary key serves it); authors' own
-- lists use this one.
CREATE INDEX articles_author ON articles (author_id, id);
