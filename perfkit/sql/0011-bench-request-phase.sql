-- perfkit schema 0011 (bench): the phase of the schedule each request belongs to.
-- 'warmup' | 'measure' | 'cooldown', from the request's intended send: perfkit bench
-- --warmup-s / --cooldown-s take their seconds out of the start and the end of the
-- schedule; those requests are stored but left out of every statistic. NULL (rows
-- written before 0011, runs imported from other tools) reads as 'measure'.
ALTER TABLE requests ADD COLUMN phase VARCHAR;
