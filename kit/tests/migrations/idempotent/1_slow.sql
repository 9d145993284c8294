-- kit:idempotent
-- Slow on purpose: the tests kill an instance during the sleep.
CREATE TABLE IF NOT EXISTS first_half (id BIGINT NOT NULL PRIMARY KEY);
SELECT SLEEP(3);
CREATE TABLE IF NOT EXISTS second_half (id BIGINT NOT NULL PRIMARY KEY);
