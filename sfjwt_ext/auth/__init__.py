"""The thin adapter: keys, where to log in, the token POST, credentials and the refreshing session.

Imports nothing of sfjwt_ext above it (client, sharing, data, cli).
"""
