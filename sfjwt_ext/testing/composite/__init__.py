"""The Composite API of the local org: sObject Collections, composite, tree, batch.

routes.py is the routing table (register); see docs/architecture.md, "testing/".
"""
