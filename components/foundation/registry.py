"""ECR repositories, one per service: scanned on push, immutable tags, bounded history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.shared.urns import formerly

# Keep the last 30 release images; untagged layers (failed or superseded pushes) go after 14 days.
LIFECYCLE_POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "Expire untagged images after 14 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": "Keep the 30 most recent tagged images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": 30,
                },
                "action": {"type": "expire"},
            },
        ]
    },
    sort_keys=True,
)


@dataclass(frozen=True)
class ImageRegistryArgs:
    # Repository names are "<name_prefix>/<service>".
    name_prefix: str
    services: Sequence[str]
    protect: bool


class ImageRegistry(pulumi.ComponentResource):
    repository_urls: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: ImageRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "financial-planning:foundation:ImageRegistry",
            name,
            None,
            formerly(opts, "financial-planning:registry:ImageRegistry"),
        )
        self.repository_urls = {}
        for service in args.services:
            repository = aws.ecr.Repository(
                f"{name}-{service}",
                name=f"{args.name_prefix}/{service}",
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                    scan_on_push=True
                ),
                encryption_configurations=[
                    aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")
                ],
                # Deleting a repository that still holds images needs a deliberate step.
                force_delete=False,
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            aws.ecr.LifecyclePolicy(
                f"{name}-{service}",
                repository=repository.name,
                policy=LIFECYCLE_POLICY,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.repository_urls[service] = repository.repository_url
        self.register_outputs({"repositoryUrls": self.repository_urls})
