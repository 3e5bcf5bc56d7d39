-- Readiness writes one row here: `/readyz` answers 503 when writes fail (a full disk, a
-- read-only database), not only when the database is unreachable.
CREATE TABLE readiness_probe (
    id INTEGER PRIMARY KEY NOT NULL,
    checked_at BIGINT NOT NULL
);
INSERT INTO readiness_probe (id, checked_at) VALUES (1, 0);
