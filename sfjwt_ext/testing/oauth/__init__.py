"""OAuth 2.0 of the local org: the JWT bearer token endpoint, revoke, identity, userinfo, JWT-based access tokens.

routes.py is the routing table (register); see docs/architecture.md, "testing/".
"""
