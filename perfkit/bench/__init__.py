"""The load engine: schedules, payloads, protocols, recording."""
