-- Slow on purpose: the tests kill an instance during the sleep.
CREATE TABLE first_half (id BIGINT NOT NULL PRIMARY KEY);
SELECT SLEEP(3);
CREATE TABLE second_half (id BIGINT NOT NULL PRIMARY KEY);
