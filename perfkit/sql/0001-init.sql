-- perfkit schema, version 1.
-- The one place where the store's tables are written down. Later changes are
-- new numbered files (0002-....sql), applied in order by perfkit.store.
-- Conventions: timestamps are UTC; *_unix_s columns are seconds since the Unix
-- epoch (UTC) as DOUBLE for fast arithmetic; durations carry their unit.

CREATE TABLE runs (
    run_id            VARCHAR PRIMARY KEY,   -- e.g. 20261125T101500Z-3f2a1c
    label             VARCHAR,               -- free text, e.g. "hardware=T4,batching=fixed"
    labels            JSON,                  -- label parsed into {"key": "value"} where it has k=v pairs
    target            VARCHAR,               -- URL with any password redacted
    protocol          VARCHAR,               -- http-json | openai | kserve-v2 | locust | mlperf
    pattern           VARCHAR,               -- constant | poisson | gamma | burst | step | ramp | replay | closed | scenario
    scenario          JSON,                  -- the full, secret-free configuration of the run
    started_at        TIMESTAMPTZ,
    ended_at          TIMESTAMPTZ,
    t0_unix_s         DOUBLE,                -- wall-clock instant of schedule offset 0
    status            VARCHAR,               -- running | completed | interrupted | failed
    status_reason     VARCHAR,
    intended_rate_rps DOUBLE,
    duration_s        DOUBLE,
    tool              VARCHAR,               -- perfkit | locust | mlperf ...
    tool_version      VARCHAR,
    machine           JSON,                  -- CPU/GPU model, driver, cores, memory, hostname, git commit
    summary           JSON                   -- the summary JSON (format_version inside)
);

CREATE TABLE requests (
    run_id            VARCHAR NOT NULL,
    seq               BIGINT  NOT NULL,      -- position in the schedule, 0-based, unique per run
    worker            INTEGER,
    stage             INTEGER,               -- scenario stage index (0 for single-stage runs)
    intended_unix_s   DOUBLE,                -- when the schedule said it should leave
    sent_unix_s       DOUBLE,                -- when it actually left (NULL if never sent)
    first_byte_unix_s DOUBLE,                -- first response byte / first token
    done_unix_s       DOUBLE,                -- response complete or error observed
    latency_ms        DOUBLE,                -- done - intended  (no coordinated omission)
    service_ms        DOUBLE,                -- done - sent
    status_code       INTEGER,               -- HTTP status, NULL when none was received
    error_kind        VARCHAR,               -- NULL when ok; connection_refused | timeout | http_5xx | ...
    bytes_out         BIGINT,
    bytes_in          BIGINT,
    payload_class     VARCHAR,               -- normal | longtail | outlier | file | fixed
    payload_bytes     BIGINT,
    prompt_tokens     INTEGER,               -- LLM targets
    output_tokens     INTEGER,
    ttft_ms           DOUBLE,                -- first token - sent
    tpot_ms           DOUBLE,                -- (done - first token) / (output_tokens - 1)
    itl_ms_max        DOUBLE                 -- largest gap between tokens
);

CREATE TABLE sources (
    source_id         BIGINT PRIMARY KEY,
    kind              VARCHAR NOT NULL,      -- prometheus | prom-range | nvidia-smi | dcgm | locust | mlperf | scrape | nvml | host
    path              VARCHAR,
    sha256            VARCHAR,               -- of the file's bytes; (kind, sha256) is unique
    row_count         BIGINT,
    run_id            VARCHAR,               -- the run it belongs to, when known
    label             VARCHAR,
    ingested_at       TIMESTAMPTZ DEFAULT now(),
    UNIQUE (kind, sha256)
);
CREATE SEQUENCE source_id_seq START 1;

CREATE TABLE series (
    series_id         BIGINT PRIMARY KEY,
    source_id         BIGINT NOT NULL,
    name              VARCHAR NOT NULL,      -- normalized metric name, e.g. gpu_utilization_percent
    labels            JSON,                  -- {"gpu": "0", "UUID": "...", ...}
    unit              VARCHAR,               -- bytes | percent | ratio | W | J | seconds | MHz | count ...
    type              VARCHAR                -- counter | gauge | histogram | summary | untyped | info | stateset
);
CREATE SEQUENCE series_id_seq START 1;

CREATE TABLE samples (
    series_id         BIGINT NOT NULL,
    ts_unix_s         DOUBLE,                -- sample time (UTC epoch seconds); NULL if the export had none
    value             DOUBLE
);
