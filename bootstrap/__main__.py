"""`python -m bootstrap --region R --bucket B --repository owner/name [--prefix P]`.

Creates or corrects the state bucket, the state key, GitHub's OIDC provider and the preview
and deploy roles, prints what it changed, and the commands to use them.
"""

from __future__ import annotations

import argparse
import sys

import boto3

from bootstrap.state import Bootstrap, BootstrapError, BootstrapSettings


def main(argv: list[str] | None = None, session: object | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--repository", required=True, help="owner/name on GitHub")
    parser.add_argument("--prefix", default="financial-planning")
    args = parser.parse_args(argv)
    try:
        settings = BootstrapSettings(
            region=args.region, bucket=args.bucket, repository=args.repository, prefix=args.prefix
        )
    except BootstrapError as error:
        print(f"bootstrap: {error}", file=sys.stderr)
        return 2
    bootstrap = Bootstrap(settings, session or boto3.Session())
    changes = bootstrap.run()
    print("\n".join(changes) if changes else "nothing to change")
    print(f"\npulumi login s3://{settings.bucket}")
    print(
        f"pulumi stack init <stack> --secrets-provider "
        f"'awskms://{settings.key_alias}?region={settings.region}'"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
