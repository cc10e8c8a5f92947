"""Storage classes on the volume key, and one immutable image repository per service."""

from __future__ import annotations

import json

from offline.engine import StackRun
from tests.conftest import SEED_PORTS
from tests.lookup import app_objects, inline_policy, irsa_role, key_by_alias, objects, pod_spec


def test_storage_classes_encrypt_with_the_volume_key(stack_run: StackRun) -> None:
    classes = objects(stack_run, "StorageClass")
    assert set(classes) == {"gp3", "gp3-retain"}
    defaults = [
        n
        for n, c in classes.items()
        if c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    ]
    assert defaults == ["gp3"]
    key = key_by_alias(stack_run, f"financial-planning-{stack_run.stack}-volumes")
    for storage_class in classes.values():
        assert storage_class["provisioner"] == "ebs.csi.aws.com"
        assert storage_class["parameters"]["encrypted"] == "true"
        assert storage_class["parameters"]["kmsKeyId"].endswith(key.id)
        assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    # The EBS CSI driver may use that key, and only for AWS resources when granting.
    grants = inline_policy(stack_run, irsa_role(stack_run, "kube-system", "ebs-csi-controller-sa"))
    assert all(s["Resource"].endswith(key.id) for s in grants)


def test_one_immutable_scanned_repository_per_service(stack_run: StackRun) -> None:
    repositories = stack_run.of_type("aws:ecr/repository:Repository")
    names = {r.inputs["name"].rsplit("/", 1)[1]: r for r in repositories}
    assert set(names) == set(SEED_PORTS)
    for repository in repositories:
        assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    lifecycles = stack_run.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert len(lifecycles) == 8
    rules = json.loads(lifecycles[0].inputs["policy"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules] == ["untagged", "any"]
    # Each service runs its stack's release tag from its own repository.
    urls = {r.inputs["name"].rsplit("/", 1)[1]: r.inputs["name"] for r in repositories}
    services = stack_run.namespace["settings"].services
    for name, deployment in app_objects(stack_run, "Deployment").items():
        image = pod_spec(deployment)["containers"][0]["image"]
        registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        assert image == f"{registry}/{urls[name]}:{services[name].image_tag}"


def test_release_tags_come_from_the_stack_files(production: StackRun, staging: StackRun) -> None:
    for run, tag, exceptions in (
        (production, "1.4.2", {"ml-service": "1.3.0"}),
        (staging, "1.5.0-rc.1", {}),
    ):
        for name, deployment in app_objects(run, "Deployment").items():
            image = pod_spec(deployment)["containers"][0]["image"]
            assert image.endswith(
                f"/financial-planning-{run.stack}/{name}:" + exceptions.get(name, tag)
            )
