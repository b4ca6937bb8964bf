"""The checks behind tests/test_cluster_config.py: the cluster launcher configs (cluster.yaml for AWS,
cluster-gcp.yaml for GCP) merged and validated by Ray 2.60's own ``prepare_config``/``validate_config``,
and one helper per property that returns a list of problems (see that file's docstring)."""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("cluster.yaml", "cluster-gcp.yaml")
BUCKET_SCHEME = {"aws": "s3://", "gcp": "gs://"}
PROJECT = "emohrnet"

# GPUs per machine for the instance types these configs may use (AWS does not list them in the config).
AWS_GPUS = {"g4dn.xlarge": 1, "g4dn.2xlarge": 1, "g4dn.12xlarge": 4, "g5.xlarge": 1, "g5.2xlarge": 1,
            "g5.4xlarge": 1, "g5.12xlarge": 4, "g5.48xlarge": 8, "g6.xlarge": 1, "g6.12xlarge": 4,
            "p3.2xlarge": 1, "p3.8xlarge": 4, "p4d.24xlarge": 8}

# Sections of a cluster config that hold shell commands, global and per node type.
COMMAND_SECTIONS = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
                    "head_start_ray_commands", "worker_start_ray_commands")
NODE_COMMAND_SECTIONS = ("initialization_commands", "worker_setup_commands")
# pip options that take a value (the value is not a requirement).
PIP_OPTIONS_WITH_VALUE = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url",
                          "-f", "--find-links", "--target", "-t", "--prefix", "--root", "--python", "--cache-dir",
                          "--upgrade-strategy", "--config-settings", "-C", "--platform", "--python-version",
                          "--implementation", "--abi", "--only-binary", "--no-binary", "--src"}


# --------------------------------------------------------------------------------------------------
# Loading


def load(name: str) -> dict[str, Any]:
    """A cluster config as `ray up` reads it (YAML)."""
    return yaml.safe_load((ROOT / name).read_text())


def ray_prepare_and_validate(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does offline: merge the provider's defaults, then Ray's own validation.

    Raises:
        jsonschema.ValidationError: the config breaks ray-schema.json.
        ValueError: Ray's cross-field rules (head_node_type, sum of min_workers <= max_workers).
    """
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def ray_schema() -> dict[str, Any]:
    """The cluster-config JSON schema shipped inside the ray package (the one validate_config uses)."""
    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def schema_errors(config: dict[str, Any]) -> list[str]:
    """Every violation of Ray's schema by the config as written (before defaults are merged)."""
    schema = ray_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(config)]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pinned_requirements(project: dict[str, Any]) -> dict[str, str]:
    """``{name: version}`` for every requirement pyproject.toml pins with ``==`` (extras included)."""
    reqs = list(project["project"].get("dependencies", []))
    for extra in project["project"].get("optional-dependencies", {}).values():
        reqs += extra
    pins = {}
    for text in reqs:
        req = Requirement(text)
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator == "==":
            pins[canonicalize_name(req.name)] = specs[0].version
    return pins


# --------------------------------------------------------------------------------------------------
# Commands


def commands(config: dict[str, Any]) -> list[tuple[str, str]]:
    """``(section, command)`` for every shell command in the config."""
    out = [(section, cmd) for section in COMMAND_SECTIONS for cmd in config.get(section) or []]
    for name, node_type in (config.get("available_node_types") or {}).items():
        out += [(f"{name}.{section}", cmd) for section in NODE_COMMAND_SECTIONS for cmd in node_type.get(section) or []]
    return out


def simple_commands(command: str) -> list[list[str]]:
    """A shell command line split into its simple commands (at ; && || | ( ) { }), each as words."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    out: list[list[str]] = [[]]
    for token in lexer:
        if (token and set(token) <= set(";&|()")) or token in ("{", "}"):
            out.append([])
        else:
            out[-1].append(token)
    return [words for words in out if words]


def pip_installs(command: str) -> list[dict[str, Any]]:
    """Every ``pip install`` in a command: ``{"requirements": [...], "editable": [...], "options": [...]}``.

    Recognises ``pip``/``pip3`` (any path), ``python -m pip`` and ``uv pip``.
    """
    found = []
    for words in simple_commands(command):
        names = [Path(w).name for w in words]
        start = None
        for i in range(len(words) - 1):
            if names[i] in ("pip", "pip3") and words[i + 1] == "install":
                start = i + 2
                break
        if start is None:
            continue
        install = {"requirements": [], "editable": [], "options": []}
        args = iter(words[start:])
        for arg in args:
            if arg in ("-e", "--editable"):
                install["editable"].append(next(args, ""))
            elif arg.startswith("--editable="):
                install["editable"].append(arg.split("=", 1)[1])
            elif arg in PIP_OPTIONS_WITH_VALUE:
                install["options"].append(f"{arg} {next(args, '')}")
            elif arg.startswith("-"):
                install["options"].append(arg)
            else:
                install["requirements"].append(arg)
        found.append(install)
    return found


def _norm_dir(path: str) -> str:
    return path.rstrip("/") or "/"


# --------------------------------------------------------------------------------------------------
# Checks: each returns a list of problems (empty: fine)


def explicit_pin_problems(config: dict[str, Any], pins: dict[str, str]) -> list[str]:
    """Packages the setup installs by name that pyproject.toml pins must carry the same ``==`` version;
    the project itself must not come from an index or URL (only from the mounted checkout)."""
    problems = []
    for section, cmd in commands(config):
        for install in pip_installs(cmd):
            for text in install["requirements"]:
                try:
                    req = Requirement(text)
                except InvalidRequirement:
                    if PROJECT in text:
                        problems.append(f"{section}: installs {PROJECT} from {text!r}, not the mounted checkout")
                    continue
                name = canonicalize_name(req.name)
                if name == PROJECT:
                    problems.append(f"{section}: installs {text!r} from an index, not the mounted checkout")
                elif name in pins and str(req.specifier) != f"=={pins[name]}":
                    problems.append(f"{section}: installs {text!r} but pyproject.toml pins {name}=={pins[name]}")
    return problems


def project_install_problems(config: dict[str, Any], project: dict[str, Any]) -> list[str]:
    """The checkout is mounted (pyproject.toml, readme, every package) and installed with ``pip install -e``
    on every node (``setup_commands``), with its dependencies."""
    mounts = config.get("file_mounts") or {}
    problems = []
    homes = [remote for remote, local in mounts.items()
             if Path(local).as_posix() == "pyproject.toml" and remote.endswith("/pyproject.toml")]
    if len(homes) != 1:
        return [f"file_mounts must copy ./pyproject.toml exactly once (found {len(homes)})"]
    home = homes[0].rsplit("/", 1)[0]
    packages = [pattern.rstrip("*").rstrip(".") for pattern in
                project.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("include", [])]
    if home.rstrip("/").rsplit("/", 1)[-1] in packages:
        problems.append(f"the checkout is copied to {home}, the name of a package: run from the folder above it (a Ray "
                        "job's default), Python imports that folder instead of the installed package")
    wanted = {f"{home}/{project['project'].get('readme', 'README.md')}": project["project"].get("readme", "README.md")}
    for pattern in project.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("include", []):
        package = pattern.rstrip("*").rstrip(".")
        if (ROOT / package).is_dir():
            wanted[f"{home}/{package}"] = package
    for remote, local in wanted.items():
        if remote not in mounts:
            problems.append(f"file_mounts lacks {remote} (from ./{local})")
        elif Path(mounts[remote]).as_posix().removeprefix("./") != local:
            problems.append(f"file_mounts copies {mounts[remote]!r} to {remote}, expected ./{local}")
    for local in mounts.values():
        if not local.startswith("~") and not (ROOT / local).exists():
            problems.append(f"file_mounts: {local} does not exist in the repository")
    editable = [install for cmd in config.get("setup_commands") or [] for install in pip_installs(cmd)
                if _norm_dir(home) in map(_norm_dir, install["editable"])]
    if not editable:
        problems.append(f"setup_commands (every node) must run `pip install -e {home}`")
    for install in editable:
        if "--no-deps" in install["options"]:
            problems.append(f"`pip install -e {home}` uses --no-deps: pyproject.toml's pins would not be installed")
    return problems


def exposure_problems(prepared: dict[str, Any]) -> list[str]:
    """Dashboard on 127.0.0.1 only; no 0.0.0.0 anywhere; no security-group ingress beyond SSH."""
    problems = []
    text = json.dumps(prepared)
    if "0.0.0.0" in text:
        problems.append("the config (with Ray's defaults merged) contains 0.0.0.0")
    for section, cmd in commands(prepared):
        for host in re.findall(r"--dashboard-host[= ](\S+)", cmd):
            if host.strip("'\";") not in ("127.0.0.1", "localhost"):
                problems.append(f"{section}: dashboard bound to {host}")
    head_starts = [cmd for cmd in prepared.get("head_start_ray_commands") or []
                   if re.search(r"\bray start\b.*--head", cmd)]
    if not head_starts:
        problems.append("head_start_ray_commands has no `ray start --head`")
    for cmd in head_starts:
        if not re.search(r"--dashboard-host[= ]127\.0\.0\.1\b", cmd):
            problems.append("`ray start --head` must bind the dashboard to 127.0.0.1 (--dashboard-host=127.0.0.1)")
    for rule in prepared.get("provider", {}).get("security_group", {}).get("IpPermissions", []):
        if (rule.get("FromPort"), rule.get("ToPort")) != (22, 22):
            problems.append(f"security group opens more than SSH: {rule}")
    return problems


def auth_problems(prepared: dict[str, Any]) -> list[str]:
    """Every `ray start` runs with RAY_AUTH_MODE=token; the token file is shipped; nothing disables auth."""
    problems = []
    text = json.dumps(prepared)
    if re.search(r"RAY_AUTH_MODE=(?!token\b)", text):
        problems.append("RAY_AUTH_MODE is set to something other than token")
    starts = [(s, c) for s, c in commands(prepared) if re.search(r"\bray start\b", c)]
    if not starts:
        problems.append("no `ray start` command")
    for section, cmd in starts:
        before = cmd[:re.search(r"\bray start\b", cmd).start()]
        if not re.search(r"\bRAY_AUTH_MODE=token\b", before):
            problems.append(f"{section}: `ray start` without RAY_AUTH_MODE=token: {cmd}")
    if "~/.ray/auth_token" not in (prepared.get("file_mounts") or {}):
        problems.append("file_mounts does not ship ~/.ray/auth_token to the nodes")
    return problems


def _bucket(url: str, scheme: str) -> str:
    """The bucket named by an object-store URL (``s3://bucket/prefix?query`` -> ``bucket``)."""
    return url[len(scheme):].split("?", 1)[0].split("/", 1)[0]


def storage_problems(config: dict[str, Any]) -> list[str]:
    """The bucket is the cluster's shared storage (no node mounts a shared file system).

    - ``storage_path`` (what the search gets as ``--storage-path``) and ``bucket``, ``bucket_data``,
      ``bucket_shards`` are object-store URLs of the provider's scheme (s3:// on AWS, gs:// on GCP)
      that :func:`emohrnet.io.location.is_uri` takes for a URI (a plain path would be a local folder,
      different on every node);
    - the shards are in the storage path's bucket, at ``<storage_path>/shards``, where the search
      publishes them;
    - ``emohrnet_home`` and ``data_root`` are local absolute paths;
    - every ``ray start`` (head and workers) exports ``EMOHRNET_HOME`` = ``emohrnet_home``, and no
      command sets another EMOHRNET_HOME.
    """
    from emohrnet.io.location import is_uri

    meta = (config.get("metadata") or {}).get("emohrnet")
    if not meta:
        return ["metadata.emohrnet is missing"]
    problems = []
    scheme = BUCKET_SCHEME[config["provider"]["type"]]
    url_re = re.compile(re.escape(scheme) + r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9](/\S*)?", re.I)
    for key in ("storage_path", "bucket", "bucket_data", "bucket_shards"):
        url = str(meta.get(key, ""))
        if not url_re.fullmatch(url) or not is_uri(url):
            problems.append(f"metadata.emohrnet.{key} = {url!r} is not a {scheme} URL")
    storage = str(meta.get("storage_path", "")).split("?", 1)[0].rstrip("/")
    shards = str(meta.get("bucket_shards", "")).split("?", 1)[0].rstrip("/")
    if _bucket(shards, scheme) != _bucket(storage, scheme):
        problems.append(f"metadata.emohrnet.bucket_shards = {shards!r} is not in the bucket of "
                        f"storage_path {storage!r}")
    elif shards != f"{storage}/shards":
        problems.append(f"metadata.emohrnet.bucket_shards = {shards!r}, but the search publishes the shards "
                        f"to <storage_path>/shards = {storage}/shards")
    for key in ("emohrnet_home", "data_root"):
        value = str(meta.get(key, ""))
        if is_uri(value) or not value.startswith("/"):
            problems.append(f"metadata.emohrnet.{key} = {value!r} is not a local absolute path")
    home = str(meta.get("emohrnet_home", ""))
    for section in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in config.get(section) or [] if re.search(r"\bray start\b", c)]
        if not starts or not all(re.search(rf"\bEMOHRNET_HOME={re.escape(home)}(?=\s|;|$)", c) for c in starts):
            problems.append(f"{section}: `ray start` does not export EMOHRNET_HOME={home}")
    for section, cmd in commands(config):
        for value in re.findall(r"\bEMOHRNET_HOME=([^\s;'\"]*)", cmd):
            if value != home:
                problems.append(f"{section}: sets EMOHRNET_HOME={value}, not metadata.emohrnet.emohrnet_home {home}")
    return problems


# Scopes that let a GCP service account read and write Cloud Storage objects.
GCS_SCOPES = {"https://www.googleapis.com/auth/cloud-platform",
              "https://www.googleapis.com/auth/devstorage.read_write",
              "https://www.googleapis.com/auth/devstorage.full_control"}


def bucket_access_problems(config: dict[str, Any]) -> list[str]:
    """Every worker node type has credentials for the bucket, which its training workers read (the
    shards) and write (checkpoints, results): on AWS an IAM instance profile, on GCP a service account
    with a Cloud Storage read/write scope. Workers get neither by default; the head gets Ray's own
    (ray-autoscaler-v1 / ray-autoscaler-sa-v1 with the cloud-platform scope) when the config names
    none."""
    problems = []
    provider = config["provider"]["type"]
    for name, node in config["available_node_types"].items():
        if name == config["head_node_type"]:
            continue
        cfg = node.get("node_config") or {}
        if provider == "aws":
            profile = cfg.get("IamInstanceProfile") or {}
            if not (profile.get("Arn") or profile.get("Name")):
                problems.append(f"{name}: no IamInstanceProfile, so its workers cannot reach the bucket")
        elif provider == "gcp":
            scopes = {scope for account in cfg.get("serviceAccounts") or [] if account.get("email")
                      for scope in account.get("scopes") or []}
            if not scopes & GCS_SCOPES:
                problems.append(f"{name}: no service account with a Cloud Storage read/write scope "
                                f"({sorted(scopes) or 'none'}), so its workers cannot write the bucket")
    return problems


HEAD_IDENTITIES = ("instance-profile/ray-autoscaler-v1", "ray-autoscaler-sa-v1@")
"""The head's own identity (it may create and delete instances): never a worker's."""


def worker_identity_problems(config: dict[str, Any]) -> list[str]:
    """Workers run as their own bucket-only identity, not the head's."""
    problems = []
    for name, node in config["available_node_types"].items():
        if name == config["head_node_type"]:
            continue
        cfg = node.get("node_config") or {}
        names = [(cfg.get("IamInstanceProfile") or {}).get("Arn", "")]
        names += [account.get("email", "") for account in cfg.get("serviceAccounts") or []]
        if any(head in n for n in names for head in HEAD_IDENTITIES):
            problems.append(f"{name}: runs as the head's identity ({', '.join(n for n in names if n)})")
    return problems


def reproducibility_problems(config: dict[str, Any]) -> list[str]:
    """Every node gets the same software whenever it starts: the uv installer and the Python patch
    release are pinned (Ray refuses a worker whose Python differs from the head's), and a GCP disk
    image is named, not a family (which resolves to its newest image at each launch)."""
    problems = []
    text = "\n".join(command for _, command in commands(config))
    if "astral.sh/uv/install.sh" in text or not re.search(r"astral\.sh/uv/\d+\.\d+\.\d+/install\.sh", text):
        problems.append("the uv installer is not pinned to a version (astral.sh/uv/X.Y.Z/install.sh)")
    for python in re.findall(r"uv venv[^\n]*--python\s+(\S+)", text):
        if not re.fullmatch(r"3\.\d+\.\d+", python):
            problems.append(f"uv venv --python {python}: pin the patch release (e.g. 3.11.13)")
    for name, node in (config.get("available_node_types") or {}).items():
        for disk in (node.get("node_config") or {}).get("disks") or []:
            image = (disk.get("initializeParams") or {}).get("sourceImage", "")
            if "/family/" in image:
                problems.append(f"{name}: sourceImage {image} is a family; pin an image")
    return problems


def network_problems(config: dict[str, Any]) -> list[str]:
    """AWS: every node type names its security group and subnets by id, so Ray never creates a group
    (with SSH open to 0.0.0.0/0) because it looked in another VPC."""
    if config["provider"]["type"] != "aws":
        return []
    return [f"{name}: no {key}" for name, node in config["available_node_types"].items()
            for key in ("SecurityGroupIds", "SubnetIds") if not (node.get("node_config") or {}).get(key)]


def worker_problems(prepared: dict[str, Any]) -> list[str]:
    """min_workers <= max_workers (each node type and in total); a CPU head; GPU worker types whose
    advertised GPUs match the machine."""
    problems = []
    types = prepared["available_node_types"]
    total_min = 0
    for name, node in types.items():
        lo, hi = node.get("min_workers", 0), node.get("max_workers", prepared["max_workers"])
        total_min += lo
        if lo > hi:
            problems.append(f"{name}: min_workers {lo} > max_workers {hi}")
        if hi > prepared["max_workers"]:
            problems.append(f"{name}: max_workers {hi} > the cluster's max_workers {prepared['max_workers']}")
    if total_min > prepared["max_workers"]:
        problems.append(f"sum of min_workers {total_min} > max_workers {prepared['max_workers']}")
    head = types[prepared["head_node_type"]]
    if head.get("resources", {}).get("GPU", 0):
        problems.append("the head node advertises GPUs; it is meant to be a CPU node")
    gpu_types = {n: t for n, t in types.items() if t.get("resources", {}).get("GPU", 0) >= 1}
    if not gpu_types:
        problems.append("no worker node type advertises a GPU")
    provider = prepared["provider"]["type"]
    for name, node in gpu_types.items():
        gpus = node["resources"]["GPU"]
        cfg = node["node_config"]
        if provider == "gcp":
            attached = sum(a.get("acceleratorCount", 0) for a in cfg.get("guestAccelerators", []))
            if attached != gpus:
                problems.append(f"{name}: resources GPU {gpus} but guestAccelerators attach {attached}")
            if str(cfg.get("scheduling", {}).get("onHostMaintenance", "")).upper() != "TERMINATE":
                problems.append(f"{name}: GPU VMs need scheduling.onHostMaintenance TERMINATE")
        elif provider == "aws":
            known = AWS_GPUS.get(cfg.get("InstanceType"))
            if known is not None and known != gpus:
                problems.append(f"{name}: {cfg['InstanceType']} has {known} GPUs, resources say {gpus}")
    return problems


def bash_syntax_problems(config: dict[str, Any]) -> list[str]:
    """Every command parses as bash (`bash -n`)."""
    problems = []
    for section, cmd in commands(config):
        result = subprocess.run(["bash", "-n", "-c", cmd], capture_output=True, text=True, timeout=10)
        if result.returncode:
            problems.append(f"{section}: {result.stderr.strip()} in {cmd!r}")
    return problems


# --------------------------------------------------------------------------------------------------
# The on-premise config (cluster-onprem.yaml: Ray's local provider)

ONPREM = "cluster-onprem.yaml"


def onprem_problems(config: dict[str, Any]) -> list[str]:
    """What the on-premise config needs beyond the shared rules (each seen wrong in a real ``ray up`` on
    three hosts, tests/test_ray_up.py):

    - the head runs autoscaler v1 (``RAY_enable_autoscaler_v2=0`` exported before ``ray start --head``):
      ``ray up`` of Ray 2.60 turns v2 on, which does not support the local provider and started one of
      two listed workers;
    - every listed worker is started and kept: ``min_workers`` = ``max_workers`` = the number of
      ``worker_ips``;
    - the storage every node reaches: an ``s3://`` URL of an S3-compatible store with its
      ``endpoint_override``, whose credentials file every node gets (``~/.aws/credentials`` in
      ``file_mounts``), or an absolute path every host mounts;
    - every ``ray start`` exports ``EMOHRNET_HOME`` = ``metadata.emohrnet.emohrnet_home`` (``~`` written
      as ``$HOME`` in the commands).
    """
    from emohrnet.io.location import is_uri

    problems = []
    if config["provider"].get("type") != "local":
        return [f"provider.type is {config['provider'].get('type')!r}, not local"]
    heads = [c for c in config.get("head_start_ray_commands") or [] if re.search(r"\bray start\b.*--head", c)]
    for cmd in heads:
        before = cmd[:re.search(r"\bray start\b", cmd).start()]
        if not re.search(r"\bRAY_enable_autoscaler_v2=0\b", before):
            problems.append("head_start_ray_commands: `ray start --head` without RAY_enable_autoscaler_v2=0 "
                            "(autoscaler v2 does not support the local provider)")
    workers = len(config["provider"].get("worker_ips") or [])
    for key in ("min_workers", "max_workers"):
        if config.get(key, workers) != workers:
            problems.append(f"{key} = {config.get(key)}, but worker_ips lists {workers} hosts")
    meta = (config.get("metadata") or {}).get("emohrnet") or {}
    storage = str(meta.get("storage_path", ""))
    if is_uri(storage):
        if not storage.startswith("s3://") or "endpoint_override=" not in storage:
            problems.append(f"metadata.emohrnet.storage_path = {storage!r}: an S3-compatible store needs s3:// and "
                            "its endpoint_override")
        if "~/.aws/credentials" not in (config.get("file_mounts") or {}):
            problems.append("the storage is an S3-compatible store, but file_mounts does not ship ~/.aws/credentials")
    elif not storage.startswith("/"):
        problems.append(f"metadata.emohrnet.storage_path = {storage!r} is neither a URL nor an absolute path")
    home = str(meta.get("emohrnet_home", "")).replace("~", "$HOME", 1)
    for section in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in config.get(section) or [] if re.search(r"\bray start\b", c)]
        if not starts or not all(f"EMOHRNET_HOME={home}" in c for c in starts):
            problems.append(f"{section}: `ray start` does not export EMOHRNET_HOME={home}")
    return problems
