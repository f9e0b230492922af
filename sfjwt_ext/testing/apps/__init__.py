"""The local org's apps: External Client Apps and Connected Apps (models) and the Connect REST apps/oauth API.

routes.py is the routing table (register); see docs/architecture.md, "testing/".
"""
