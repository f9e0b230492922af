"""SOSL search of the local org (search, parameterizedSearch).

routes.py is the routing table (register); see docs/architecture.md, "testing/".
"""
