CREATE TABLE comments (
    id         BIGINT   NOT NULL AUTO_INCREMENT PRIMARY KEY,
    article_id BIGINT   NOT NULL,
    author_id  BIGINT   NOT NULL,
    body       TEXT     NOT NULL,
    created_at BIGINT   NOT NULL,
    -- Serves both an article's comment page (newest first) and the counts of
    -- many articles, without touching the table rows.
    KEY comments_article (article_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
