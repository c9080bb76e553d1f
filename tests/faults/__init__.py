"""The fault suite: the whole stack under load, one fault at a time (``python -m tests.faults``)."""
