"""The REST API of the local org (and Tooling, Apex REST, external-id routes).

routes.py is the routing table (register); see docs/architecture.md, "testing/".
"""
