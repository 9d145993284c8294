CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

-- Uniqueness lives in the database, so concurrent sign-ups cannot race.
CREATE UNIQUE INDEX users_username ON users (username);
