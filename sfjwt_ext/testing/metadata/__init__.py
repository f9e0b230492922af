"""The SOAP Metadata API of the local org (deploy, retrieve, list, read; External Client App types).

routes.py is the routing table (register); see docs/architecture.md, "testing/".
"""
