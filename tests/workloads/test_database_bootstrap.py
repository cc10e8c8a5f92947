"""The database bootstrap reads the master secret as it is when it runs, with its own role.

Aurora rotates the managed master secret (every 7 days in production: RDS User Guide, "Password
management with Amazon Aurora and AWS Secrets Manager"); a copy synced by External Secrets every
hour could hold the replaced password for up to an hour after a rotation.
"""

from __future__ import annotations

import datetime
import hashlib
import http.server
import importlib
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from components.workloads.database_users import SCRIPT_FILES, SCRIPTS
from offline.engine import StackRun
from tests.lookup import inline_policy, objects, policy

NAMESPACE = "database-bootstrap"


def job(run: StackRun) -> dict[str, Any]:
    [found] = [o for o in objects(run, "Job").values() if o["metadata"]["namespace"] == NAMESPACE]
    return found


def test_the_job_reads_the_current_secret_itself(stack_run: StackRun) -> None:
    spec = job(stack_run)["spec"]["template"]["spec"]
    [reader] = spec["initContainers"]
    [psql] = spec["containers"]
    env = {e["name"]: e["value"] for e in reader["env"]}
    cluster = stack_run.one("aws:rds/cluster:Cluster")
    [managed] = cluster.state["masterUserSecrets"]
    assert env["MASTER_SECRET_ARN"] == managed["secretArn"]
    assert reader["command"] == ["python3", "/sql/master_secret.py"]
    # The credentials live in memory, in this pod only; no Kubernetes Secret holds them.
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["credentials"] == {
        "name": "credentials",
        "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"},
    }
    assert not [v for v in spec["volumes"] if "secret" in v]
    assert {"name": "credentials", "mountPath": "/credentials", "readOnly": True} in psql[
        "volumeMounts"
    ]
    assert "$(cat /credentials/password)" in psql["command"][2]
    assert not [
        e
        for e in objects(stack_run, "ExternalSecret").values()
        if e["metadata"]["namespace"] == NAMESPACE
    ]
    # The scripts travel with the SQL; the Job's name follows all of them.
    configs = objects(stack_run, "ConfigMap").values()
    [config] = [o for o in configs if o["metadata"]["namespace"] == NAMESPACE]
    assert set(config["data"]) == {"users.sql", *SCRIPT_FILES}
    assert config["metadata"]["name"] == job(stack_run)["metadata"]["name"]


def test_a_failed_run_is_a_new_pod_that_reads_the_secret_again(stack_run: StackRun) -> None:
    # With restartPolicy OnFailure the kubelet restarts only the failed psql container: the
    # init container does not run again and the memory emptyDir keeps the password it wrote
    # (Kubernetes docs, "Init containers": they rerun when the Pod restarts, not when an app
    # container does). Never makes each retry a new pod, within the Job's backoffLimit
    # ("Jobs", Pod backoff failure policy), whose init container reads the secret as it is then.
    # Both bootstrap Jobs (database users, search access) share the shape (bootstrap_job.py).
    every = list(objects(stack_run, "Job").values())
    assert {o["metadata"]["namespace"] for o in every} == {NAMESPACE, "search-bootstrap"}
    for each in every:
        spec = each["spec"]
        assert spec["template"]["spec"]["restartPolicy"] == "Never", each["metadata"]["name"]
        assert spec["backoffLimit"] >= 1
    assert job(stack_run)["spec"]["template"]["spec"]["initContainers"]


def test_only_the_bootstraps_own_role_reads_the_master_secret(stack_run: StackRun) -> None:
    spec = job(stack_run)["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "database-bootstrap"
    [association] = [
        a
        for a in stack_run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a.inputs["namespace"] == NAMESPACE
    ]
    assert association.inputs["serviceAccount"] == "database-bootstrap"
    roles = stack_run.of_type("aws:iam/role:Role")
    [role] = [r for r in roles if r.state["arn"] == association.inputs["roleArn"]]
    [trust] = policy(role, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {
        "aws:RequestTag/eks-cluster-name": f"financial-planning-{stack_run.stack}",
        "aws:RequestTag/kubernetes-namespace": NAMESPACE,
        "aws:RequestTag/kubernetes-service-account": "database-bootstrap",
    }
    cluster = stack_run.one("aws:rds/cluster:Cluster")
    [managed] = cluster.state["masterUserSecrets"]
    read, decrypt = inline_policy(stack_run, role)
    assert read == {
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": managed["secretArn"],
    }
    assert decrypt["Resource"] == cluster.inputs["masterUserSecretKmsKeyId"]
    # Only through Secrets Manager, and only for this secret: Secrets Manager sends the
    # encryption context SecretARN = the secret's ARN with each KMS request (Secrets Manager
    # User Guide, "Secret encryption and decryption", Secrets Manager encryption context).
    assert decrypt["Condition"] == {
        "StringEquals": {
            "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
            "kms:EncryptionContext:SecretARN": managed["secretArn"],
        }
    }
    # External Secrets no longer reads it (nor its key).
    eso = json.dumps(
        [
            r.inputs
            for r in stack_run.of_type("aws:iam/rolePolicy:RolePolicy")
            if "secretsmanager:GetSecretValue" in json.dumps(r.inputs)
            and r.inputs["role"] != role.id
        ]
    )
    assert managed["secretArn"] not in eso


@pytest.fixture
def master_secret(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module("master_secret")


def test_the_signature_is_botocores(master_secret: Any) -> None:
    # AWS Signature Version 4 as botocore computes it for the same request.
    sigv4 = importlib.import_module("aws_sigv4")
    credentials = sigv4.Credentials(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "TOKEN"
    )
    body = json.dumps({"SecretId": "arn:aws:secretsmanager:us-east-1:1:secret:x"}).encode()
    host = "secretsmanager.us-east-1.amazonaws.com"
    extra = {"content-type": master_secret.CONTENT_TYPE, "x-amz-target": master_secret.TARGET}
    request = AWSRequest(
        method="POST",
        url=f"https://{host}/",
        data=body,
        headers={**extra, "x-amz-content-sha256": hashlib.sha256(body).hexdigest()},
    )
    SigV4Auth(Credentials(*credentials), "secretsmanager", "us-east-1").add_auth(request)
    when = datetime.datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    ours = sigv4.signed_headers(
        "POST", host, "/", body, "us-east-1", "secretsmanager", credentials, when, extra
    )
    assert ours["authorization"] == request.headers["Authorization"]
    # Another service is another signature.
    other = sigv4.signed_headers(
        "POST", host, "/", body, "us-east-1", "kms", credentials, when, extra
    )
    assert other["authorization"] != ours["authorization"]


class _Fake(http.server.BaseHTTPRequestHandler):
    passwords: Iterator[str]

    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:  # the Pod Identity agent
        assert self.headers["Authorization"] == "projected-token"
        self._answer({"AccessKeyId": "AKID", "SecretAccessKey": "s", "Token": "t"})

    def do_POST(self) -> None:  # Secrets Manager
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.headers["X-Amz-Target"] == "secretsmanager.GetSecretValue"
        assert self.headers["Content-Type"] == "application/x-amz-json-1.1"
        assert "Credential=AKID/" in self.headers["Authorization"]
        assert json.loads(body) == {"SecretId": "arn:master"}
        password = next(self.passwords)
        self._answer({"SecretString": json.dumps({"username": "postgres", "password": password})})

    def _answer(self, found: dict[str, Any]) -> None:
        payload = json.dumps(found).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def test_each_run_writes_the_secret_as_it_is_then(
    master_secret: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rotation between two runs: the second run signs in with the new password.
    _Fake.passwords = iter(["before-rotation", "after-rotation"])
    server = http.server.HTTPServer(("127.0.0.1", 0), _Fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    token = tmp_path / "token"
    token.write_text("projected-token")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("MASTER_SECRET_ARN", "arn:master")
    monkeypatch.setenv("SECRETS_MANAGER_URL", url)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{url}/creds")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token))
    try:
        for password in ("before-rotation", "after-rotation"):
            directory = tmp_path / password
            directory.mkdir()
            monkeypatch.setenv("CREDENTIALS_DIR", str(directory))
            assert master_secret.main() == 0
            assert (directory / "password").read_text() == password
            assert (directory / "username").read_text() == "postgres"
            mode = stat.S_IMODE(os.stat(directory / "password").st_mode)
            assert mode == 0o400
    finally:
        server.shutdown()


def test_up_waits_for_each_bootstrap_job_beyond_its_own_deadline(stack_run: StackRun) -> None:
    """pulumi-kubernetes stops waiting for a Job after 10 minutes unless its customTimeouts
    say otherwise (provider/pkg/await/job.go, DefaultJobTimeoutMins = 10; read at v4.32.0, the
    newest tag this machine holds of the 4.x line the program pins). A bootstrap Job may take up
    to its activeDeadlineSeconds with its retries: `up` waits longer, so that it reports the
    Job's own outcome (and Jaeger, which waits on the search bootstrap, is not failed by a
    wait that gave up early)."""
    jobs = stack_run.of_type("kubernetes:batch/v1:Job")
    namespaces = {j.inputs["metadata"]["namespace"] for j in jobs}
    assert {NAMESPACE, "search-bootstrap"} <= namespaces
    for found in jobs:
        deadline = found.inputs["spec"]["activeDeadlineSeconds"]
        assert deadline > 10 * 60, "the provider's default wait would be enough"
        for step in ("create", "update"):
            wait = found.custom_timeouts[step]
            assert wait.endswith("m"), wait
            assert int(wait[:-1]) * 60 > deadline, (found.name, step, wait)
