"""Reliability tests (shared reliability.md): real worker processes, the real sandbox, real DBs.

Nothing in this package may import Django at module level: its modules also run as the
entry points of worker and helper subprocesses (``python -m tests.reliability.worker``).
"""
