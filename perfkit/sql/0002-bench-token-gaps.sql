-- perfkit schema 0002 (bench): inter-token gaps of streamed LLM responses.
-- One row per gap between consecutive tokens of one request, so the inter-token
-- latency (ITL) distribution is exact over all gaps, as `vllm bench serve` reports it.
CREATE TABLE token_gaps (
    run_id   VARCHAR NOT NULL,
    seq      BIGINT  NOT NULL,   -- the request (requests.seq of the same run)
    gap_ms   DOUBLE  NOT NULL    -- time between this token and the previous one
);
