"""deploy/ holds together: every YAML parses, promtool accepts the Prometheus config and rules
(and their unit tests pass), the compose services and Kubernetes manifests run `hub`
subcommands and options that exist and that the README names, with the environment variables
the hub reads, the example config passes `hub check`, and every metric the rules, the
dashboard and the autoscaler name is in a real /metrics answer of the hub."""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner
from starlette.testclient import TestClient

from connectors.hubspot.sandbox import Faults, HubSpotSandbox
from hub.audit import AuditObserver
from hub.cli import main
from hub.config import loads
from hub.metrics import names as metric_names
from hub.metrics.observer import MetricsObserver
from hub.store import Store
from hub.sync.engine import SyncEngine
from hub.web.app import make_app
from tests.integration.metrics_support import TOKEN_VAR, hub_config, parse

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROM = DEPLOY / "prometheus"
README = (ROOT / "README.md").read_text(encoding="utf-8")
HUB_IMAGE = "liaison-hub"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))


@functools.cache
def _docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _compose() -> dict[str, Any]:
    return dict(_docs(DEPLOY / "compose.yaml")[0])


def _k8s() -> list[dict[str, Any]]:
    out = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        out += [d for d in _docs(path) if isinstance(d, dict) and "kind" in d]
    return out


def _hub_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in _compose()["services"].items()
            if str(svc.get("image", "")).startswith(HUB_IMAGE)}


def _hub_containers() -> list[dict[str, Any]]:
    out = []
    for doc in _k8s():
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        out += [c for c in pod.get("containers", []) if c["image"].startswith(HUB_IMAGE)]
    return out


def _hub_commands() -> list[list[str]]:
    """Every `hub` command line the deploy files run (the image's entrypoint is `hub`)."""
    lines = [[str(a) for a in svc["command"]] for svc in _hub_services().values()]
    lines += [[str(a) for a in c["args"]] for c in _hub_containers()]
    cmd = re.search(r"^CMD (\[.*\])$", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    assert cmd is not None
    lines.append(json.loads(cmd.group(1)))
    return lines


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (Debian: apt-get install prometheus)"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    assert found is not None
    return found


# -- parsing and promtool ----------------------------------------------------------------


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert _docs(path), f"{path} is empty"


def test_the_grafana_dashboard_is_json_on_the_provisioned_datasource() -> None:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "liaison.json").read_text())
    source = _docs(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")[0]
    uid = source["datasources"][0]["uid"]
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert panels and dash["uid"] == "liaison"
    for panel in panels:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
    titles = " ".join(p["title"] for p in dash["panels"] if p["type"] == "row").lower()
    for topic in ("coverage", "throughput", "errors", "backlog"):
        assert topic in titles
    provider = _docs(DEPLOY / "grafana" / "provisioning" / "dashboards" / "liaison.yml")[0]
    mounts = _compose()["services"]["grafana"]["volumes"]
    assert any(m.endswith(":" + provider["providers"][0]["options"]["path"] + ":ro")
               and m.startswith("./grafana/dashboards") for m in mounts), mounts


def test_promtool_accepts_the_config_and_the_rules() -> None:
    promtool = _promtool()
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "rules.yml"]):
        done = subprocess.run([promtool, *args], cwd=PROM, capture_output=True, text=True, check=False,
                              timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_rules_pass_their_unit_tests() -> None:
    promtool = _promtool()
    tests = sorted(p.name for p in PROM.glob("rules*.test.yml"))
    tested = set()
    for name in tests:
        for case in _docs(PROM / name)[0]["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", [])}
    assert len(tested) >= 2, tested
    done = subprocess.run([promtool, "test", "rules", *tests], cwd=PROM,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_cover_the_alerts_ops_asked_for() -> None:
    rules = {r["alert"]: r for g in _docs(PROM / "rules.yml")[0]["groups"] for r in g["rules"]}
    for alert in ("LiaisonFlowFailing", "LiaisonFlowStale", "LiaisonDeadLettersGrowing",
                  "LiaisonSiloDisconnected", "LiaisonQuotaNearlySpent"):
        assert alert in rules
        assert rules[alert]["annotations"]["summary"], alert
    assert rules["LiaisonSiloDisconnected"]["for"].endswith("d")


# -- the same commands and variables as the README and the CLI ----------------------------


def test_the_deploy_files_run_hub_subcommands_the_readme_names_with_real_options() -> None:
    documented = set(re.findall(r"\bhub ([a-z]+)\b", README))
    lines = _hub_commands()
    used = {line[0] for line in lines}
    assert {"serve", "worker", "scheduler", "migrate"} <= used
    for line in lines:
        sub = line[0]
        assert sub in documented, f"`hub {sub}` is used in deploy/ but not in the README"
        command = main.commands.get(sub)
        assert isinstance(command, click.Command), f"hub has no subcommand {sub}"
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        for arg in line[1:]:
            if arg.startswith("--"):
                assert arg in options, f"hub {sub} has no option {arg} (has {options})"


@functools.cache
def _hub_reads() -> set[str]:
    """Environment variable names the hub's own code names (string constants)."""
    out: set[str] = set()
    for path in (ROOT / "hub").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    re.fullmatch(r"[A-Z][A-Z0-9_]{3,}", node.value):
                out.add(node.value)
    return out


def _config_refs() -> set[str]:
    """The ${NAME} references in the example config's values (comments left out)."""
    def strings(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for v in node.values():
                yield from strings(v)
        elif isinstance(node, list):
            for v in node:
                yield from strings(v)
        elif isinstance(node, str):
            yield node

    doc = _docs(DEPLOY / "hub.example.yaml")[0]
    return {ref for s in strings(doc) for ref in re.findall(r"\$\{([A-Z0-9_]+)\}", s)}


def _secret_keys() -> dict[str, set[str]]:
    return {d["metadata"]["name"]: set(d.get("stringData", {})) for d in _k8s()
            if d["kind"] == "Secret"}


def _container_env(container: dict[str, Any]) -> set[str]:
    names = {e["name"] for e in container.get("env", [])}
    keys = _secret_keys()
    for source in container.get("envFrom", []):
        names |= keys[source["secretRef"]["name"]]
    return names


def test_hub_containers_get_the_variables_the_readme_and_the_hub_use() -> None:
    known = _hub_reads() | set(re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\bPGPASSWORD\b",
                                          README)) | _config_refs()
    assert "HUB_CONFIG" in README and "PGPASSWORD" in README
    envs = {f"compose {n}": set(s["environment"]) for n, s in _hub_services().items()}
    envs |= {f"k8s {c['name']}": _container_env(c) for c in _hub_containers()}
    assert len(envs) >= 8, envs.keys()
    for where, names in envs.items():
        assert {"HUB_CONFIG", "PGPASSWORD"} <= names, where
        assert names <= known, f"{where}: {names - known} is read by nothing in the hub"
        assert _config_refs() <= names, f"{where} lacks {_config_refs() - names}"


def test_the_config_is_mounted_where_hub_config_points() -> None:
    for name, svc in _hub_services().items():
        target = svc["environment"]["HUB_CONFIG"]
        assert f"./hub.example.yaml:{target}:ro" in svc["volumes"], name
    for c in _hub_containers():
        target = Path(next(e["value"] for e in c["env"] if e["name"] == "HUB_CONFIG"))
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert str(target.parent) in mounts, c["name"]
    configmap = next(d for d in _k8s() if d["kind"] == "ConfigMap")
    assert configmap["data"]["hub.yaml"] == (DEPLOY / "hub.example.yaml").read_text()


def test_the_example_config_passes_hub_check() -> None:
    env = {ref: "set-for-the-check" for ref in _config_refs()}
    result = CliRunner().invoke(main, ["--config", str(DEPLOY / "hub.example.yaml"), "check"],
                                env=env)
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    settings = loads((DEPLOY / "hub.example.yaml").read_text(),
                     file=str(DEPLOY / "hub.example.yaml"))
    assert settings.store_url.startswith("postgresql://")
    assert settings.broker_url.startswith("redis://")
    hosts = {s.split(":")[0] for s in ("postgres", "redis")}
    assert hosts <= set(_compose()["services"])


def test_the_dockerfile_installs_as_the_readme_says_and_runs_hub_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    install = re.search(r"^RUN (python3 -m pip install) \"?\.(\[postgres\])?\"?", text, re.MULTILINE)
    assert install is not None, "the Dockerfile must pip install the project"
    assert install.group(1) in README  # the same command as the README's
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["hub"\]', text, re.MULTILINE)
    for svc in _hub_services().values():
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"


def test_compose_has_every_role_and_scales_workers() -> None:
    services = _compose()["services"]
    assert {"redis", "postgres", "web", "worker", "scheduler", "migrate", "prometheus",
            "grafana"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] >= 2
    mounts = " ".join(services["prometheus"]["volumes"])
    assert "prometheus.yml" in mounts and "rules.yml" in mounts
    prom = _docs(PROM / "prometheus.yml")[0]
    targets = [t for job in prom["scrape_configs"] if job["job_name"] == "liaison"
               for sc in job["static_configs"] for t in sc["targets"]]
    web = services["web"]["command"]
    assert targets == [f"web:{web[web.index('--port') + 1]}"]
    # one scrape sees every worker: web and workers share the multiprocess folder
    for name in ("web", "worker"):
        folder = services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        assert any(v.startswith("metrics:") and v.endswith(folder)
                   for v in services[name]["volumes"]), name


def test_kubernetes_manifests_scale_workers_on_queue_depth() -> None:
    docs = _k8s()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert {"liaison-web", "liaison-worker", "liaison-scheduler"} <= set(deployments)
    assert deployments["liaison-scheduler"]["spec"]["replicas"] == 1
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "liaison-worker"
    metric = hpa["spec"]["metrics"][0]["external"]["metric"]["name"]
    assert metric == metric_names.QUEUE_DEPTH.name
    adapter = _docs(DEPLOY / "k8s" / "prometheus-adapter-values.yaml")[0]
    assert adapter["rules"]["external"][0]["name"]["as"] == metric
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    assert "liaison-web" in services
    kustomized = set(_docs(DEPLOY / "k8s" / "kustomization.yaml")[0]["resources"])
    assert kustomized == {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {
        "kustomization.yaml", "prometheus-adapter-values.yaml"}


# -- metric names against a real /metrics answer -------------------------------------------


@pytest.fixture(scope="module")
def exported() -> Iterator[set[str]]:
    """Sample names (and the label values of quota headers) of a real /metrics answer."""
    import tempfile

    faults = Faults(rate_limit=0.25, server_error=0.2, retry_after=0.01, seed=3)
    with tempfile.TemporaryDirectory() as tmp, \
            HubSpotSandbox(seed=5, count=20, faults=faults) as sb:
        os.environ[TOKEN_VAR] = sb.token
        try:
            folder = Path(tmp)
            # A flow whose filter lets nothing through: records are skipped, not synced.
            filtered = ("  crm-filtered:\n    entity: contact\n    from: crm\n"
                        "    to: suppliers\n    filter: {path: \"emails[0].address\", "
                        "equals: nobody@example.com}\n")
            settings = loads(hub_config(folder, sb.base_url, extra_flows=filtered),
                             file=str(folder / "hub.yaml"))
            store = Store(settings.store_url, auto_migrate=True)
            engine = SyncEngine(settings, store, observers=[
                AuditObserver(store), MetricsObserver(settings, store)])
            engine.run("crm-to-sheet")
            engine.run("suppliers-to-sheet")
            engine.run("suppliers-to-sheet")  # the second time: records unchanged
            engine.run("crm-filtered")
            with TestClient(make_app(settings, store, lambda _s, _e: None)) as client:
                answer = client.get("/metrics")
            store.close()
        finally:
            del os.environ[TOKEN_VAR]
    assert answer.status_code == 200
    samples = parse(answer.text)
    yield {n for n, _ in samples} | {f"header={dict(ls)['header']}" for n, ls in samples
                                     if n == metric_names.QUOTA.name}


def _named_in(path: Path) -> set[str]:
    return set(re.findall(r"\bliaison_[a-z_]+[a-z]\b", path.read_text()))


@pytest.mark.parametrize("path", [
    PROM / "rules.yml", DEPLOY / "grafana" / "dashboards" / "liaison.json",
    DEPLOY / "k8s" / "worker.yaml", DEPLOY / "k8s" / "prometheus-adapter-values.yaml"],
    ids=lambda p: str(p.relative_to(DEPLOY)))
def test_metric_names_in_deploy_files_are_exported_by_the_hub(
        path: Path, exported: set[str]) -> None:
    named = _named_in(path)
    assert named, path
    missing = named - exported
    assert not missing, f"{path.name} names {missing}, which /metrics does not export"


def test_every_exported_family_follows_the_naming_conventions(exported: set[str]) -> None:
    for spec in metric_names.ALL:
        assert spec.name.startswith("liaison_")
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
        want = spec.name + ("_count" if spec.kind == "histogram" else "")
        assert want in exported, f"{want} is missing from a real /metrics answer"
    # the quota alert's header pattern matches what the hub exports for a daily quota
    assert any(re.fullmatch(r"header=.*(daily|day).*", e) for e in exported)


def test_kustomize_renders_the_manifests() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:  # an extra check where kubectl exists; CI does not install it
        pytest.skip("kubectl is not installed")
    done = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s")], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert all(d["metadata"].get("namespace", "liaison") == "liaison" for d in rendered)
    images = {c["image"] for d in rendered if d["kind"] in ("Deployment", "Job")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"registry.example.com/liaison-hub:latest"}
