-- perfkit schema, version 3 (ingest): views that join telemetry to runs.
-- A sample belongs to a run when its source was attached to that run
-- (--run, or recorded live by perfkit bench), or, for sources attached to no
-- run, when its timestamp falls inside the run's [started_at, ended_at].

CREATE VIEW telemetry AS
SELECT sa.series_id, se.name, se.labels, se.unit, se.type,
       so.source_id, so.kind AS source_kind, so.run_id AS source_run_id,
       sa.ts_unix_s, sa.value
FROM samples sa
JOIN series se ON se.series_id = sa.series_id
JOIN sources so ON so.source_id = se.source_id;

CREATE VIEW run_telemetry AS
SELECT r.run_id, t.*
FROM runs r
JOIN telemetry t
  ON t.source_run_id = r.run_id
  OR (t.source_run_id IS NULL
      AND t.ts_unix_s >= epoch(r.started_at)
      AND t.ts_unix_s <= epoch(coalesce(r.ended_at, r.started_at + to_seconds(coalesce(r.duration_s, 0)))));
