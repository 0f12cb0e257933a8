-- perfkit schema 0008 (analyze, trends): acknowledged change points.
-- `perfkit trend --ack CHANGE_ID --reason TEXT` records that a change point found in a
-- case's history is known and accepted, so that `perfkit trend --gate` stops failing on it.
-- change_id is the detector's stable id of the change (case, metric and the run it starts at);
-- a later acknowledgement of the same id replaces the earlier one.
CREATE TABLE trend_acknowledgements (
    change_id         VARCHAR PRIMARY KEY,
    case_name         VARCHAR,               -- the run label case=NAME of the series
    metric            VARCHAR,               -- e.g. p99_ms
    run_id            VARCHAR,               -- first run after the change
    acknowledged_by   VARCHAR NOT NULL,      -- $USER (or the login name) of whoever acknowledged it
    acknowledged_at   TIMESTAMPTZ NOT NULL,  -- when, UTC
    reason            VARCHAR NOT NULL       -- why it is accepted
);
