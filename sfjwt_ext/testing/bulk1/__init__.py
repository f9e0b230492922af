"""Bulk API 1.0 of the local org: query and ingest jobs and batches (/services/async).

routes.py is the routing table (register); see docs/architecture.md, "testing/".
"""
