"""The local loop: the development stack on a kind cluster of one's own machine, in one command.

`python -m devloop cluster` (`make dev-cluster`) creates the kind cluster that
Pulumi.development.yaml names and a local registry beside it, as kind's "Local Registry" guide
sets them up; `images` (`make dev-images`) builds the placeholder service image
(devloop/placeholder/) and pushes it under every image the development stack's Deployments
name; `up` (`make dev-up`) does both and then `pulumi up`s the stack; `down` deletes the
cluster. Docker, kind, kubectl and the Pulumi CLI run on the user's machine, not in CI: the
tests check the commands these steps run (`--dry-run` prints them), the kind config and the
placeholder image, offline.
"""
