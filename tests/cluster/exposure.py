"""Who can reach the UIs and APIs the deployment files start: each check returns the problems it
finds (empty when the file keeps everything on loopback or behind authentication).

Ray: the dashboard (which is also the job-submission API) listens on loopback, or, on Kubernetes,
sits behind a ClusterIP Service with token authentication on. MLflow: published ports bind to
loopback unless the server requires sign-in, and the server always runs `--app-name basic-auth`.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from tests.cluster.install_steps import simple_commands

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
INTERNAL_SERVICE_TYPES = {"ClusterIP", None}


def ray_start_commands(commands: list[str]) -> list[list[str]]:
    """The `ray start` invocations in launcher commands, with their VAR=value prefixes."""
    found = []
    for command in commands:
        for words in simple_commands(command):
            start = next((i for i in range(len(words) - 1) if words[i] == "ray" and words[i + 1] == "start"), None)
            if start is not None:
                found.append(words)
    return found


def option(words: list[str], name: str) -> str | None:
    for i, word in enumerate(words):
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
        if word == name and i + 1 < len(words):
            return words[i + 1]
    return None


def launcher_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    head = ray_start_commands(config.get("head_start_ray_commands", []))
    workers = ray_start_commands(config.get("worker_start_ray_commands", []))
    if not head or not workers:
        problems.append("no `ray start` in head_start_ray_commands or worker_start_ray_commands")
    for words in head:
        host = option(words, "--dashboard-host")
        if host not in LOOPBACK:
            problems.append(f"head dashboard binds to {host or 'the default'}, not loopback")
    for words in head + workers:
        if "RAY_AUTH_MODE=token" not in words:
            problems.append(f"`{shlex.join(words)}` runs without RAY_AUTH_MODE=token")
    if "~/.ray/auth_token" not in config.get("file_mounts", {}):
        problems.append("file_mounts do not carry ~/.ray/auth_token to the nodes")
    return problems


def _ray_cluster_spec(document: dict[str, Any]) -> dict[str, Any]:
    return document["spec"]["rayClusterSpec"] if document["kind"] == "RayJob" else document["spec"]


def kuberay_problems(document: dict[str, Any]) -> list[str]:
    spec = _ray_cluster_spec(document)
    problems = []
    if spec.get("authOptions", {}).get("mode") != "token":
        problems.append("authOptions.mode is not token")
    head = spec["headGroupSpec"]
    if head.get("serviceType") not in INTERNAL_SERVICE_TYPES:
        problems.append(f"head Service type {head['serviceType']} is reachable from outside the cluster")
    if head.get("enableIngress"):
        problems.append("the head has an Ingress")
    return problems


def k8s_service_problems(document: dict[str, Any]) -> list[str]:
    if document["kind"] == "Service" and document["spec"].get("type") not in INTERNAL_SERVICE_TYPES:
        return [f"Service {document['metadata']['name']} is of type {document['spec']['type']}"]
    if document["kind"] == "Ingress":
        return [f"Ingress {document['metadata']['name']} publishes a UI"]
    return []


def requires_mlflow_auth(command: list[str]) -> bool:
    return "mlflow" in command[:1] and option(command, "--app-name") == "basic-auth"


_INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} with the given environment."""

    def replace(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        if op in (":-", "-"):
            return arg if current is None or (op == ":-" and current == "") else current
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise KeyError(f"{name}: {arg}")
        return current or ""

    return _INTERPOLATION.sub(replace, value).replace("$$", "$")


def published_host_ips(port: str | int | dict[str, Any], env: dict[str, str]) -> str | None:
    """The host address a Compose port binds to, None for all interfaces."""
    if isinstance(port, dict):
        return port.get("host_ip")
    parts = interpolate(str(port), env).rsplit(":", 2)
    return parts[0] if len(parts) == 3 else None


def compose_problems(compose: dict[str, Any], env: dict[str, str]) -> list[str]:
    problems = []
    for name, service in compose.get("services", {}).items():
        command = service.get("command") or []
        if isinstance(command, str):
            command = shlex.split(command)
        for port in service.get("ports", []):
            host_ip = published_host_ips(port, env)
            if host_ip not in LOOPBACK and not requires_mlflow_auth(command):
                problems.append(f"service {name} publishes {port} on {host_ip or 'all interfaces'} without sign-in")
    return problems
