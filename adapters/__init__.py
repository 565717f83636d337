"""Adapters: the event store backends, and (later) the accounting targets and their sandboxes."""
