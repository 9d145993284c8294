CREATE TABLE articles (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    author_id  BIGINT       NOT NULL,
    title      VARCHAR(200) NOT NULL,
    body       MEDIUMTEXT   NOT NULL,
    created_at BIGINT       NOT NULL,
    -- The list is newest first by id (the primary key serves it); authors'
    -- own lists use this one.
    KEY articles_author (author_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
