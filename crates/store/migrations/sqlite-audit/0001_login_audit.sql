-- The login audit log of an SQLite database, in a file of its own beside it (`<stem>-audit.<ext>`):
-- every login appends to it, and a write to the main file moves the generation every cache of
-- every process watching it reads by (inotify cannot tell one table from another). Columns as
-- the table had in the main file (migrations 0001 and 0003), ids included.
CREATE TABLE login_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('success', 'failure')),
    reason      TEXT    NOT NULL,
    external_id TEXT,
    username    TEXT,
    client_addr TEXT,
    request_id  TEXT    NOT NULL
);

CREATE INDEX login_audit_at ON login_audit (at);
