"""The team MLflow server (cluster/mlflow): sign-in required, artifacts proxied to the bucket,
secrets required rather than defaulted, the server's MLflow equal to the clients', and the bucket
helper working against a real S3 API."""

from __future__ import annotations

import configparser
import copy
import importlib.metadata
import importlib.util
import re
from urllib.parse import urlparse

import pytest

from tests.cluster.exposure import compose_problems, interpolate, k8s_service_problems, option, requires_mlflow_auth
from tests.cluster.schemas import REPO, load_documents
from tests.fixtures.s3 import s3, s3_server  # noqa: F401  (fixtures)

MLFLOW = REPO / "cluster" / "mlflow"
SECRETS = {"POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "MLFLOW_ADMIN_PASSWORD"}


def compose() -> dict:
    (document,) = load_documents(MLFLOW / "compose.yaml")
    return document


def k8s_documents() -> list[dict]:
    return [d for path in sorted((MLFLOW / "k8s").glob("*.yaml")) for d in load_documents(path)]


def k8s_server_args() -> list[str]:
    (deployment,) = [d for d in k8s_documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container["command"] + container["args"]


@pytest.mark.parametrize("command", [compose()["services"]["mlflow"]["command"], k8s_server_args()], ids=["compose", "k8s"])
def test_the_server_requires_sign_in_and_proxies_artifacts_to_the_bucket(command):
    assert command[:2] == ["mlflow", "server"]
    assert requires_mlflow_auth(command)
    assert option(command, "--backend-store-uri").startswith("postgresql://")
    assert option(command, "--artifacts-destination") == "s3://mlflow/artifacts"
    assert "--serve-artifacts" in command
    # No password on the command line (visible in `ps`): libpq reads PGPASSWORD.
    assert urlparse(option(command, "--backend-store-uri")).password is None


def test_compose_publishes_mlflow_on_loopback_unless_told_otherwise():
    assert compose_problems(compose(), env={}) == []
    ports = compose()["services"]["mlflow"]["ports"]
    assert [interpolate(p, {}) for p in ports] == ["127.0.0.1:5000:5000"]
    assert "postgres" not in str(compose()["services"]["postgres"].get("ports", "")) and "ports" not in compose()["services"]["minio"]


def test_the_compose_check_catches_an_open_port_without_sign_in():
    broken = copy.deepcopy(compose())
    broken["services"]["mlflow"]["ports"] = ["5000:5000"]
    broken["services"]["mlflow"]["command"].remove("--app-name=basic-auth")
    assert compose_problems(broken, env={}) != []
    exposed_db = copy.deepcopy(compose())
    exposed_db["services"]["postgres"]["ports"] = ["0.0.0.0:5432:5432"]
    assert compose_problems(exposed_db, env={}) != []


def test_compose_refuses_to_start_without_each_secret():
    text = (MLFLOW / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert SECRETS <= required
    example = dict(line.split("=", 1) for line in (MLFLOW / "env.example").read_text().splitlines() if "=" in line and not line.startswith("#"))
    assert set(re.findall(r"\$\{(\w+)", text)) <= set(example), "env.example does not list every variable compose.yaml reads"
    for name in SECRETS - {"MINIO_ROOT_USER"}:
        assert example[name] == "", f"env.example ships a value for {name}"
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        interpolate(compose()["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"], {})


def test_kubernetes_services_stay_inside_the_cluster():
    problems = [p for d in k8s_documents() for p in k8s_service_problems(d)]
    assert problems == []
    assert k8s_service_problems({"kind": "Service", "metadata": {"name": "mlflow"}, "spec": {"type": "LoadBalancer"}}) != []


def test_the_secret_template_commits_no_secret_and_names_every_key_the_pods_read():
    (template,) = load_documents(MLFLOW / "k8s" / "secret.template.yaml")
    assert template["stringData"] and all(value == "" for value in template["stringData"].values())
    used = set(re.findall(r"secretKeyRef: \{name: mlflow-credentials, key: ([\w-]+)\}", "".join(p.read_text() for p in (MLFLOW / "k8s").glob("*.yaml"))))
    assert used and used == set(template["stringData"])


def test_server_image_mlflow_is_the_clients_mlflow():
    (pinned,) = re.findall(r"^ARG MLFLOW_VERSION=(\S+)$", (MLFLOW / "Dockerfile").read_text(), flags=re.MULTILINE)
    assert pinned == importlib.metadata.version("mlflow")
    tags = {s["image"].rsplit(":", 1)[1] for s in compose()["services"].values() if "build" in s}
    tags |= {c["image"].rsplit(":", 1)[1] for d in k8s_documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow"
             for c in d["spec"]["template"]["spec"]["containers"] + d["spec"]["template"]["spec"]["initContainers"]}
    assert tags == {pinned}


def test_mlflow_reads_the_auth_config_with_the_admin_password_from_the_environment(monkeypatch):
    from mlflow.server.auth.config import read_auth_config

    parser = configparser.ConfigParser()
    parser.read(MLFLOW / "basic_auth.ini")
    assert "admin_password" not in parser["mlflow"]
    assert urlparse(parser["mlflow"]["database_uri"]).password is None

    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(MLFLOW / "basic_auth.ini"))
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "from-a-secret")
    config = read_auth_config()
    assert (config.admin_username, config.admin_password) == ("admin", "from-a-secret")
    assert config.database_uri.startswith("postgresql://") and config.default_permission == "READ"
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "")
    assert read_auth_config().admin_password is None  # MLflow then refuses to create the admin


def test_the_bucket_helper_creates_the_bucket_once(s3):
    spec = importlib.util.spec_from_file_location("create_bucket", MLFLOW / "create_bucket.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.create_bucket("mlflow", s3.endpoint, timeout_s=10) is True
    assert module.create_bucket("mlflow", s3.endpoint, timeout_s=10) is False
