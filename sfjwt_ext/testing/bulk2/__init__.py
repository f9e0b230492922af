"""Bulk API 2.0 of the local org: query jobs and ingest jobs, kept together in models.Bulk2Jobs.

routes.py is the routing table (register); see docs/architecture.md, "testing/".
"""
