"""The cluster launcher configs (cluster.yaml for AWS, cluster-gcp.yaml for GCP), checked offline.

`ray up` first merges a config with its provider's defaults (``prepare_config``) and validates the
result (``validate_config``: jsonschema against ``ray/autoscaler/ray-schema.json``, shipped inside
the ray package, plus a few cross-field rules) before it contacts the cloud. These tests run those
two steps of Ray 2.60 itself, then check what the configs install and expose:

- the setup installs the project from the mounted checkout (``pip install -e``), so every pin in
  pyproject.toml applies on every node, and anything installed explicitly that pyproject pins
  (e.g. ray) carries the same version;
- the dashboard binds to 127.0.0.1, nothing anywhere says 0.0.0.0, every ``ray start`` keeps token
  authentication on and the token is shipped to the nodes;
- the shared storage is a bucket: the storage path and every bucket URL are object-store URLs of the
  provider's scheme (s3:// on AWS, gs:// on GCP) that emohrnet takes for a URI, the shards are
  published under the storage path, EMOHRNET_HOME is a local folder that every ``ray start`` exports,
  and every worker node type has credentials for the bucket (an instance profile, a service account
  with a Cloud Storage scope);
- min_workers <= max_workers, and GPU node types advertise the GPUs their machines have.

Each check is a helper returning a list of problems; the ``test_*_catches_*`` tests feed the helpers
broken copies of the configs to show that they fail when they should.
"""

from __future__ import annotations

import copy
import re
import shlex
from typing import Any

import jsonschema
import pytest
from cluster_checks import (
    BUCKET_SCHEME,
    CONFIGS,
    ONPREM,
    PROJECT,
    ROOT,
    auth_problems,
    bash_syntax_problems,
    bucket_access_problems,
    explicit_pin_problems,
    exposure_problems,
    load,
    network_problems,
    onprem_problems,
    pinned_requirements,
    pip_installs,
    project_install_problems,
    pyproject,
    ray_prepare_and_validate,
    reproducibility_problems,
    schema_errors,
    storage_problems,
    worker_identity_problems,
    worker_problems,
)

# --------------------------------------------------------------------------------------------------
# The configs as shipped


@pytest.fixture(scope="module", params=CONFIGS)
def config(request) -> dict[str, Any]:
    return load(request.param)


def test_configs_pass_rays_own_validation(config):
    assert schema_errors(config) == []
    prepared = ray_prepare_and_validate(config)
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_providers(config):
    provider = config["provider"]
    assert provider["type"] in BUCKET_SCHEME
    assert provider.get("region") and provider.get("availability_zone")
    if provider["type"] == "gcp":
        assert provider.get("project_id")


def test_setup_installs_the_pinned_versions(config):
    pins = pinned_requirements(pyproject())
    assert "ray" in pins and "torch" in pins
    assert explicit_pin_problems(config, pins) == []
    assert project_install_problems(config, pyproject()) == []


def test_nothing_is_exposed_and_token_auth_stays_on(config):
    prepared = ray_prepare_and_validate(config)
    assert exposure_problems(prepared) == []
    assert auth_problems(prepared) == []


def test_the_bucket_is_the_shared_storage(config):
    assert storage_problems(config) == []
    assert bucket_access_problems(config) == []


def test_workers(config):
    assert worker_problems(ray_prepare_and_validate(config)) == []
    assert worker_identity_problems(config) == []
    assert network_problems(config) == []


def test_every_node_gets_the_same_software(config):
    assert reproducibility_problems(config) == []


def test_the_walk_through_names_each_known_trap():
    """docs/cluster.md: the AWS commands name the region and VPC; GCP grants a role with
    storage.buckets.get; TensorBoard reads gs:// only with gcsfs; rotating the token deletes the old
    one first; clients set RAY_AUTH_MODE=token; GPU quotas; a missing token file's traceback."""
    doc = (ROOT / "docs" / "cluster.md").read_text()
    create = re.search(r"aws ec2 create-security-group[^`]*?--query", doc, re.S).group(0)
    assert "--region" in create and "--vpc-id" in create
    assert all("--region" in line for line in re.findall(r"aws ec2 authorize-security-group-ingress.*", doc))
    assert "roles/storage.legacyBucketReader" in doc and "storage.buckets.get" in doc
    assert "gcsfs" in doc and "rm ~/.ray/auth_token" in doc and "export RAY_AUTH_MODE=token" in doc
    assert "GPUS_ALL_REGIONS" in doc and "G and VT instances" in doc and "traceback" in doc


def test_commands_are_valid_bash(config):
    assert bash_syntax_problems(config) == []


# --------------------------------------------------------------------------------------------------
# The checks fail on broken copies


@pytest.fixture(params=CONFIGS)
def broken(request) -> dict[str, Any]:
    """A fresh copy of a config to break."""
    return load(request.param)


def _pip(requirement: str) -> str:
    return f"~/venv/bin/pip install {shlex.quote(requirement)}"


def test_pin_check_catches_a_different_version(broken):
    pins = pinned_requirements(pyproject())
    same = f"ray[default,train,tune]=={pins['ray']}"
    broken["setup_commands"].append(_pip(same))
    assert explicit_pin_problems(broken, pins) == []  # the pinned version itself is fine
    broken["setup_commands"].append(_pip("ray[default]==2.59.0"))
    problems = explicit_pin_problems(broken, pins)
    assert len(problems) == 1 and "2.59.0" in problems[0] and f"ray=={pins['ray']}" in problems[0]


def test_pin_check_catches_unpinned_and_project_from_an_index(broken):
    pins = pinned_requirements(pyproject())
    broken["head_setup_commands"].append("python -m pip install -U torch optuna")
    broken["available_node_types"]["head"].setdefault("worker_setup_commands", []).append(
        f"uv pip install {PROJECT}==0.1.0")
    problems = explicit_pin_problems(broken, pins)
    assert any("'torch'" in p for p in problems)
    assert any("'optuna'" in p for p in problems)
    assert any("from an index" in p for p in problems)


def test_project_check_catches_a_missing_or_dependency_free_install(broken):
    project = pyproject()
    original = copy.deepcopy(broken)
    broken["setup_commands"] = [c for c in broken["setup_commands"] if "pip install -e" not in c]
    assert any("pip install -e" in p for p in project_install_problems(broken, project))

    broken = copy.deepcopy(original)
    broken["setup_commands"] = [c.replace("pip install -e", "pip install --no-deps -e")
                                for c in broken["setup_commands"]]
    assert any("--no-deps" in p for p in project_install_problems(broken, project))

    broken = copy.deepcopy(original)
    del broken["file_mounts"]["~/emohrnet-src/tune"]
    assert any("~/emohrnet-src/tune" in p for p in project_install_problems(broken, project))


def test_project_check_catches_a_checkout_named_like_its_package(broken):
    project = pyproject()
    broken["file_mounts"] = {k.replace("~/emohrnet-src", "~/emohrnet"): v for k, v in broken["file_mounts"].items()}
    broken["setup_commands"] = [c.replace("~/emohrnet-src", "~/emohrnet") for c in broken["setup_commands"]]
    assert any("the name of a package" in p for p in project_install_problems(broken, project))


def test_exposure_check_catches_a_public_dashboard(broken):
    original = copy.deepcopy(broken)
    broken["head_start_ray_commands"] = [c.replace("127.0.0.1", "0.0.0.0") for c in broken["head_start_ray_commands"]]
    problems = exposure_problems(ray_prepare_and_validate(broken))
    assert any("0.0.0.0" in p for p in problems) and any("dashboard" in p for p in problems)

    # Without its own start commands a config gets Ray's defaults, which bind the dashboard to 0.0.0.0.
    broken = copy.deepcopy(original)
    del broken["head_start_ray_commands"]
    assert exposure_problems(ray_prepare_and_validate(broken))


def test_auth_check_catches_a_start_without_token_mode(broken):
    broken["worker_start_ray_commands"] = [c.replace("RAY_AUTH_MODE=token ", "") for c in
                                           broken["worker_start_ray_commands"]]
    assert any("worker_start_ray_commands" in p for p in auth_problems(ray_prepare_and_validate(broken)))
    broken["head_start_ray_commands"] = [c.replace("RAY_AUTH_MODE=token", "RAY_AUTH_MODE=disabled") for c in
                                         broken["head_start_ray_commands"]]
    del broken["file_mounts"]["~/.ray/auth_token"]
    problems = auth_problems(ray_prepare_and_validate(broken))
    assert any("other than token" in p for p in problems) and any("auth_token" in p for p in problems)


def test_storage_check_catches_local_storage_and_a_ray_start_without_home(broken):
    meta = broken["metadata"]["emohrnet"]
    meta["storage_path"] = "/home/ubuntu/emohrnet_runs/experiments"
    meta["bucket_data"] = "/home/ubuntu/data"
    meta["bucket"] = ("gs://" if broken["provider"]["type"] == "aws" else "s3://") + "YOUR-BUCKET/emohrnet"
    meta["emohrnet_home"] = "s3://YOUR-BUCKET/home"
    broken["worker_start_ray_commands"] = [re.sub(r"\s*EMOHRNET_HOME=[^\s;]+", "", c)
                                           for c in broken["worker_start_ray_commands"]]
    problems = storage_problems(broken)
    assert any("storage_path" in p and "URL" in p for p in problems)
    assert any("bucket_data" in p for p in problems)
    assert any("emohrnet.bucket " in p for p in problems)  # the other cloud's scheme
    assert any("emohrnet_home" in p and "local" in p for p in problems)
    assert any("worker_start_ray_commands" in p and "EMOHRNET_HOME" in p for p in problems)


def test_storage_check_catches_shards_outside_the_storage_bucket(broken):
    meta = broken["metadata"]["emohrnet"]
    scheme = BUCKET_SCHEME[broken["provider"]["type"]]
    meta["bucket_shards"] = f"{scheme}another-bucket/emohrnet/shards"
    assert any("not in the bucket" in p for p in storage_problems(broken))
    meta["bucket_shards"] = meta["storage_path"] + "/elsewhere"
    assert any("publishes the shards" in p for p in storage_problems(broken))


def test_bucket_access_check_catches_workers_without_credentials(broken):
    nodes = broken["available_node_types"]
    if broken["provider"]["type"] == "aws":
        del nodes["gpu_worker"]["node_config"]["IamInstanceProfile"]
    else:
        del nodes["gpu_worker"]["node_config"]["serviceAccounts"]
        nodes["gpu_worker_4x"]["node_config"]["serviceAccounts"][0]["scopes"] = [
            "https://www.googleapis.com/auth/devstorage.read_only"]
    problems = bucket_access_problems(broken)
    assert any(p.startswith("gpu_worker:") for p in problems)
    if broken["provider"]["type"] == "gcp":
        assert any(p.startswith("gpu_worker_4x:") for p in problems)


def test_identity_network_and_pin_checks_catch_their_traps(broken):
    nodes = broken["available_node_types"]
    if broken["provider"]["type"] == "aws":
        nodes["gpu_worker"]["node_config"]["IamInstanceProfile"]["Arn"] = \
            "arn:aws:iam::1:instance-profile/ray-autoscaler-v1"
        del nodes["gpu_worker_4x"]["node_config"]["SubnetIds"]
        assert network_problems(broken) == ["gpu_worker_4x: no SubnetIds"]
    else:
        account = nodes["gpu_worker"]["node_config"]["serviceAccounts"][0]
        account["email"] = "ray-autoscaler-sa-v1@p.iam.gserviceaccount.com"
        disk = nodes["gpu_worker_4x"]["node_config"]["disks"][0]["initializeParams"]
        disk["sourceImage"] = "projects/deeplearning-platform-release/global/images/family/x"
        assert any("is a family" in p for p in reproducibility_problems(broken))
    assert [p.split(":")[0] for p in worker_identity_problems(broken)] == ["gpu_worker"]
    broken["setup_commands"] = [re.sub(r"astral\.sh/uv/[\d.]+/", "astral.sh/uv/", c).replace("--python 3.11.13",
                                                                                        "--python 3.11")
                                for c in broken["setup_commands"]]
    problems = reproducibility_problems(broken)
    assert any("uv installer" in p for p in problems) and any("--python 3.11:" in p for p in problems)


def test_worker_check_catches_min_above_max(broken):
    gpu = broken["available_node_types"]["gpu_worker"]
    gpu["min_workers"], gpu["max_workers"] = 3, 2
    assert any("min_workers 3 > max_workers 2" in p for p in worker_problems(ray_prepare_and_validate(broken)))
    # Ray's own rule: the sum of min_workers may not exceed the cluster's max_workers.
    gpu["min_workers"], gpu["max_workers"] = broken["max_workers"] + 1, broken["max_workers"] + 1
    with pytest.raises(ValueError, match="max_workers"):
        ray_prepare_and_validate(broken)


def test_worker_check_catches_a_gpu_count_mismatch(broken):
    node = broken["available_node_types"]["gpu_worker"]
    node["resources"]["GPU"] = 2
    problems = worker_problems(ray_prepare_and_validate(broken))
    assert any("gpu_worker" in p and "GPU" in p for p in problems)


def test_schema_check_catches_unknown_and_mistyped_fields(broken):
    broken["max_worker"] = 3  # a typo Ray would reject
    broken["available_node_types"]["gpu_worker"]["min_workers"] = "two"
    errors = schema_errors(broken)
    assert any("max_worker" in e for e in errors) and any("min_workers" in e for e in errors)
    with pytest.raises(jsonschema.ValidationError):
        ray_prepare_and_validate(broken)


def test_bash_check_catches_a_broken_command(broken):
    broken["setup_commands"].append("test -x ~/venv/bin/python || {")
    assert bash_syntax_problems(broken)


def test_pip_parser():
    cmd = ("test -x x || (~/venv/bin/pip install -e ~/emohrnet-src --upgrade-strategy only-if-needed && "
           "python -m pip install 'ray[default]==2.60.0' -i https://example.org/simple boto3); uv pip install -U x")
    installs = pip_installs(cmd)
    assert installs[0]["editable"] == ["~/emohrnet-src"] and installs[0]["requirements"] == []
    assert installs[1]["requirements"] == ["ray[default]==2.60.0", "boto3"]
    assert installs[2]["requirements"] == ["x"] and installs[2]["options"] == ["-U"]


# --------------------------------------------------------------------------------------------------
# The on-premise config


def test_the_onprem_config_passes_rays_validation_and_the_shared_rules():
    config = load(ONPREM)
    assert schema_errors(config) == []
    prepared = ray_prepare_and_validate(config)
    assert prepared["available_node_types"]["local.cluster.node"]["min_workers"] == 2
    assert exposure_problems(prepared) == [] and auth_problems(prepared) == []
    assert explicit_pin_problems(config, pinned_requirements(pyproject())) == []
    assert project_install_problems(config, pyproject()) == []
    assert reproducibility_problems(config) == [] and bash_syntax_problems(config) == []
    assert onprem_problems(config) == []


def test_onprem_check_catches_autoscaler_v2_missing_credentials_and_a_dropped_worker():
    config = load(ONPREM)
    config["head_start_ray_commands"] = [c.replace(" RAY_enable_autoscaler_v2=0", "")
                                         for c in config["head_start_ray_commands"]]
    assert any("autoscaler" in p for p in onprem_problems(config))
    config = load(ONPREM)
    del config["file_mounts"]["~/.aws/credentials"]
    assert any("credentials" in p for p in onprem_problems(config))
    config = load(ONPREM)
    config["min_workers"] = 1
    assert any("min_workers" in p for p in onprem_problems(config))
    config = load(ONPREM)
    config["worker_start_ray_commands"] = [c.replace("EMOHRNET_HOME=$HOME/emohrnet_runs", "EMOHRNET_HOME=/tmp/x")
                                           for c in config["worker_start_ray_commands"]]
    assert any("EMOHRNET_HOME" in p for p in onprem_problems(config))
    config = load(ONPREM)
    config["metadata"]["emohrnet"]["storage_path"] = "relative/folder"
    assert any("absolute path" in p for p in onprem_problems(config))
