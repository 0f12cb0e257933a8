-- perfkit schema 0007 (bench): every timing of a request also from its place in the schedule.
-- ttft_ms keeps its meaning (first token - actual send); ttft_intended_ms is the same
-- from the intended send, so that a request the generator sent late, or one that waited
-- for a connection, still counts its whole wait (no coordinated omission), like latency_ms.
-- connect_ms is the connection set-up (TCP, plus TLS for https) of a request that opened
-- a connection: the actual send is stamped before the connect, so a slow accept is
-- service time (the server's), not schedule lag (the generator's).
ALTER TABLE requests ADD COLUMN ttft_intended_ms DOUBLE;   -- first token - intended send
ALTER TABLE requests ADD COLUMN connect_ms DOUBLE;         -- connect (+TLS) time; NULL on a reused connection
-- Rows written before 0007: first token - intended = (first token - sent) + (sent - intended).
UPDATE requests SET ttft_intended_ms = ttft_ms + (sent_unix_s - intended_unix_s) * 1000.0
WHERE ttft_ms IS NOT NULL AND sent_unix_s IS NOT NULL AND intended_unix_s IS NOT NULL;
