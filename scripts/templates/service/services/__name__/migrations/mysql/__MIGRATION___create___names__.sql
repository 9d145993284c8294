CREATE TABLE __names__ (
    id         BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    author_id  BIGINT        NOT NULL,
    text       VARCHAR(4000) NOT NULL,
    created_at BIGINT        NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
