"""What the local org's APIs share: HTTP server, TLS, ids, sessions, SOQL, the record store, DML, async jobs.

Nothing here imports an API folder; see docs/architecture.md, "testing/".
"""
