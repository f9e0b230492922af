"""Opt-in sharing of logins: the per-process registry, the on-disk token cache, pickling."""
