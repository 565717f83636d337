"""Projections: pure folds of the log into schedules, MRR, journal entries and outbox messages."""
