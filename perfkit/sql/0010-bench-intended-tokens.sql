-- perfkit schema 0010 (bench): the token lengths a token-true LLM workload asked for.
-- prompt_tokens_intended: the prompt's length in tokens, counted with the run's tokenizer
-- (--tokenizer, default the demo model's character tokenizer) when the body was built;
-- output_tokens_intended: the output length asked for (the body's max_tokens).
-- prompt_tokens / output_tokens stay what the server's usage reported (realized).
-- NULL for runs without a token-true workload and for rows written before 0010.
ALTER TABLE requests ADD COLUMN prompt_tokens_intended INTEGER;
ALTER TABLE requests ADD COLUMN output_tokens_intended INTEGER;
