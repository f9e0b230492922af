"""``sfjwt setup``: an External Client App and a profile from an admin's session (:mod:`.eca_setup`)."""
from __future__ import annotations

import argparse
import sys
import time
from typing import IO, Any, Dict

from . import jsonout
from .base import EXIT_OK, EXIT_WAIT_EXPIRED, describe_error, err, json_failure
from .eca_setup import SetupOptions, WaitTimeout, run_setup


def cmd_setup(args: argparse.Namespace, out: IO[str]) -> int:
    options = SetupOptions(
        target_org=args.target_org, instance_url=args.instance_url, username=getattr(args, "username", None),
        app_name=args.app_name, permission_set=args.permission_set, key_file=getattr(args, "key_file", None),
        out=args.out, profile=getattr(args, "profile", None) or "default", dry_run=args.dry_run, wait=args.wait,
    )
    started = time.monotonic()
    try:
        result = run_setup(options, err=sys.stderr)
    except WaitTimeout as exc:
        err(f"sfjwt setup: {describe_error(exc)}")
        json_failure(args, EXIT_WAIT_EXPIRED, "WaitTimeout", {}, describe_error(exc))
        return EXIT_WAIT_EXPIRED
    if getattr(args, "json", False):
        jsonout.write(out, jsonout.success(_setup_result(result, options, time.monotonic() - started),
                                               args.collected))
        return EXIT_OK
    _setup_report(result, options, out, time.monotonic() - started)
    return EXIT_OK


def _setup_result(result: Any, options: Any, elapsed: float) -> Dict[str, Any]:
    """setup's --json result: what the text report shows, by name (never a secret: the
    consumer key is not one; the private key is a path)."""
    if result.package_dir:
        return {"dryRun": True, "packageDir": result.package_dir, "appName": result.app_name,
                "consumerKey": result.consumer_key, "privateKeyFile": result.key_file, "username": result.username,
                "permissionSet": options.permission_set or result.app_name + "_users"}
    return {
        "dryRun": False, "appName": result.app_name, "created": result.created, "consumerKey": result.consumer_key,
        "username": result.username, "privateKeyFile": result.key_file, "certificateFile": result.certificate_file,
        "profile": result.profile, "configFile": result.config_file, "loginUrl": result.login_url,
        "loggedIn": result.logged_in if options.wait is not None else None, "tokenRequests": result.token_requests,
        "timeSeconds": round(elapsed, 1),
    }


def _setup_report(result: Any, options: Any, out: IO[str], elapsed: float) -> None:
    if result.package_dir:
        out.write(f"package:       {result.package_dir} (package.xml + the External Client App {result.app_name!r})\n")
        out.write(f"consumer key:  {result.consumer_key}\n")
        out.write(f"private key:   {result.key_file}\n")
        out.write("nothing was deployed. Next:\n"
                  f"  sf project deploy start --metadata-dir {result.package_dir} --target-org ALIAS\n"
                  f"  sf org assign permset --name {options.permission_set or result.app_name + '_users'} "
                  f"--on-behalf-of {result.username} --target-org ALIAS\n")
        return
    out.write(f"app:           {result.app_name} ({'created' if result.created else 'updated'})\n")
    out.write(f"consumer key:  {result.consumer_key}\n")
    out.write(f"user:          {result.username}\n")
    out.write(f"private key:   {result.key_file}\n")
    if result.certificate_file:
        out.write(f"certificate:   {result.certificate_file}\n")
    out.write(f"profile:       [{result.profile}] in {result.config_file}\n")
    out.write(f"login URL:     {result.login_url}\n")
    if options.wait is None:
        out.write("login:         not tried (--no-wait)\n")
    else:
        out.write(f"login:         OK ({result.token_requests} token request{'s' if result.token_requests != 1 else ''})\n")
    out.write(f"time:          {elapsed:.1f} s\n")
    profile = "" if result.profile == "default" else f" --profile {result.profile}"
    call = "" if result.profile == "default" else f'profile="{result.profile}"'
    out.write(f"next:          sfjwt check{profile}\n"
              f"               python -c 'from sfjwt_ext import connect_jwt; print(connect_jwt({call}).query(\"SELECT Id FROM User LIMIT 1\"))'\n")
