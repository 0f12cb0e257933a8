-- perfkit schema 0006 (ingest): the series table without its PRIMARY KEY index.
-- Keeping the ART index on series.series_id up to date cost about as much as
-- parsing a 220,000-series Prometheus exposition; no query looks a series up by
-- id alone (readers join samples to series, which DuckDB does by hashing).
-- Uniqueness is kept by the writers: every series_id comes from series_id_seq
-- (perfkit.store.write.insert_series takes a block of nextval()s per batch).
-- Labels are stored zstd-compressed (DuckDB's per-column USING COMPRESSION):
-- label JSON is repetitive text; measured on 220,000 histogram series, zstd
-- wrote in ~80 ms against ~120 ms for the automatic choice (dict_fsst), in
-- 2.4 MB against 6.0 MB, and a json_extract_string filter read it faster.
-- Columns, types and order are those of 0001; rows keep their ids.
CREATE TABLE series_0006 (
    series_id         BIGINT NOT NULL,       -- from series_id_seq, unique
    source_id         BIGINT NOT NULL,
    name              VARCHAR NOT NULL,      -- normalized metric name, e.g. gpu_utilization_percent
    labels            JSON USING COMPRESSION zstd,  -- {"gpu": "0", "UUID": "...", ...}
    unit              VARCHAR,               -- bytes | percent | ratio | W | J | seconds | MHz | count ...
    type              VARCHAR                -- counter | gauge | histogram | summary | untyped | info | stateset
);
INSERT INTO series_0006 SELECT series_id, source_id, name, labels, unit, type FROM series ORDER BY series_id;
DROP TABLE series;
ALTER TABLE series_0006 RENAME TO series;
