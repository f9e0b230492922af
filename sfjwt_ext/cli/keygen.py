"""``sfjwt keygen``: a private key and a self-signed certificate, then the app's Setup steps."""
from __future__ import annotations

import argparse
import os
from typing import IO, Optional

from .keypair import KeyPairExistsError, fingerprint, load_certificate, write_key_pair
from ..errors import ConfigurationError
from .base import EXIT_OK, UsageError


APP_STEPS = """\
Next, in Salesforce Setup (or let `sfjwt setup --target-org ALIAS --key-file {key}` do all of it):
  1. Quick Find "External Client App Manager" > New External Client App: a name, your contact
     email, Distribution State "Local". Enable OAuth; Callback URL http://localhost:1717/OauthRedirect
     (unused by JWT); OAuth Scopes "Manage user data via APIs (api)" and
     "Perform requests at any time (refresh_token, offline_access)";
     Flow Enablement: "Enable JWT Bearer Flow", Upload Files: {crt}. Create.
  2. The app's Policies tab > Edit Policies:
     Permitted Users = "Admin approved users are pre-authorized",
     then select the Profiles or Permission Sets of the users who will log in. Save.
  3. The app's Settings tab > OAuth Settings > Consumer Key and Secret: copy the Consumer Key.
  4. export SF_USERNAME=... SF_CONSUMER_KEY=... SF_PRIVATE_KEY_FILE={key}
     then run: sfjwt check --cert {crt}   (a new app can take up to ~10 minutes to apply)
An existing Connected App works the same way (Setup > App Manager): "Use digital signatures"
with {crt}, Manage > Edit Policies, Manage Profiles / Permission Sets, Manage Consumer Details.
"""


def cmd_keygen(args: argparse.Namespace, out: IO[str]) -> int:
    passphrase: Optional[str] = None
    if args.passphrase_env:
        passphrase = os.environ.get(args.passphrase_env)
        if not passphrase:
            raise UsageError(
                f"--passphrase-env {args.passphrase_env}: that environment variable is not set or "
                f"is empty: export {args.passphrase_env}=... first (the passphrase never goes on the "
                "command line)"
            )
    try:
        key_path, cert_path = write_key_pair(
            args.out, args.name, bits=args.bits, days=args.days, passphrase=passphrase, force=args.force,
        )
    except KeyPairExistsError as exc:  # in CLI terms: --force, not force=True
        raise UsageError(
            f"{' and '.join(repr(p) for p in exc.paths)} already exist{'s' if len(exc.paths) == 1 else ''}: "
            "pass --force to replace, or choose another --name / --out"
        ) from None
    except ConfigurationError:
        raise
    except OSError as exc:
        raise UsageError(f"cannot write the key pair into --out {args.out!r}: {exc.strerror or exc}") from exc
    cert = load_certificate(cert_path)
    expires = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after
    out.write(f"private key:  {key_path}  (RSA {args.bits} bits, mode 0600{', encrypted' if passphrase else ''}: keep it secret)\n")
    out.write(f"certificate:  {cert_path}  (upload this one to Salesforce)\n")
    out.write(f"  SHA-256 fingerprint: {fingerprint(cert)}\n")
    out.write(f"  expires:             {expires:%Y-%m-%d %H:%M} UTC\n\n")
    out.write(APP_STEPS.format(crt=cert_path, key=key_path))
    return EXIT_OK
