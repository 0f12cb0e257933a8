-- perfkit schema 0009 (bench): what a failed request's answer said.
-- error_body holds the first 200 characters of the body of an answer whose status was
-- not 2xx, redacted (perfkit.redact) before it is cut; NULL for successful requests,
-- for failures without an answer (refused, reset, timeout) and for rows written before 0009.
ALTER TABLE requests ADD COLUMN error_body VARCHAR;
