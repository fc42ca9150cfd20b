#!/usr/bin/python3
"""check_chart.py - checks the deployment files without a cluster or helm.

  check_chart.py [--out DIR]

1. helm/kafscale: every .Values.x.y a template names exists in values.yaml;
   the chart is rendered (test/deploy/gotmpl.py: the Go-template subset the
   chart uses, with Helm's number handling) with the default values and with
   variants that switch every option on; a read of an undefined value, a
   value that no variant reads, or a refusal (fail) where none is expected
   is an error, and values that must be refused (e.g. three brokers without
   etcd) must be. The rendered manifests go to DIR/<variant>/ for yamllint.
2. The rendered manifests and samples/kubernetes/kafscale.yaml are checked
   as Kubernetes objects: names and labels, env (strings only, $(VAR)
   references defined earlier, no 5.3e+08 numbers, known KAFSCALE_* names),
   three processes sharing the memory-backed /dev/shm, run dir and data dir,
   probes on /readyz and /healthz, the preStop drain, Services, PDB, HPA and
   ServiceMonitor selecting what exists, Secret keys that exist.
3. The CRDs are structural, and samples/kafscalecluster.yaml and
   samples/kafscaletopic.yaml validate against them (topic configs are
   names the broker knows).
4. samples/kafscale.env and the systemd units agree with each other and with
   the README (systemd-analyze checks the unit syntax: see run.sh).
Exit status 1 when anything is wrong; each problem is printed.
"""
import argparse
import copy
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gotmpl  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CHART = os.path.join(ROOT, "helm", "kafscale")
SAMPLES = os.path.join(ROOT, "samples")

# Settings the deployment files use that the issues define but whose code
# (cache daemon, HTTP listener, etcd) may not be merged yet: accepted with a
# warning until the README's Configuration table lists them.
PENDING_SETTINGS = {
    "KAFSCALE_METRICS_ADDR", "KAFSCALE_SHM_NAME", "KAFSCALE_CACHE_BYTES",
    "KAFSCALE_READAHEAD_SEGMENTS", "KAFSCALE_ETCD_ENDPOINTS",
    "KAFSCALE_ETCD_USERNAME", "KAFSCALE_ETCD_PASSWORD",
}
OTHER_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "POD_NAME", "POD_NAMESPACE"}
INT_SETTING = re.compile(r"(_BYTES|_MS|_SEGMENTS|_THREADS|_RETRIES|_INFLIGHT|_PARTITIONS|_PER_CONN|^KAFSCALE_BROKER_ID|^KAFSCALE_BROKER_PORT)$")

errors, warnings = [], []
undocumented = {}   # setting -> (why, [where])


def err(msg):
    errors.append(msg)


def warn(msg):
    warnings.append(msg)


# ------------------------------------------------------------ known names ----

def readme_settings():
    names = set()
    text = open(os.path.join(ROOT, "README.md")).read()
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cell = line.split("|")[1]
        toks = re.findall(r"`([A-Z_][A-Z0-9_]*)`", cell)
        full = [t for t in toks if not t.startswith("_")]
        for t in toks:
            if not t.startswith("_"):
                names.add(t)
            elif full:
                first = full[0]
                word = t.split("_")[1]
                i = first.find("_" + word + "_")
                if i < 0 and first.endswith("_" + word):
                    i = len(first) - len(word) - 1
                prefix = first[:i] if i > 0 else first.rsplit("_", 1)[0]
                names.add(prefix + t)
    return {n for n in names if n.startswith(("KAFSCALE_", "AWS_"))}


def code_settings():
    names = set()
    for d in ("broker", "common", "flusher", "cached"):
        p = os.path.join(ROOT, d)
        if not os.path.isdir(p):
            continue
        for f in os.listdir(p):
            if f.endswith((".c", ".h")):
                try:
                    txt = open(os.path.join(p, f), errors="replace").read()
                except OSError:
                    continue
                names.update(re.findall(r'"(KAFSCALE_[A-Z0-9_]*[A-Z0-9])"', txt))
    return names


README_NAMES = readme_settings()
CODE_NAMES = code_settings()


def check_setting_name(name, where):
    if name in README_NAMES or name in OTHER_ENV:
        return
    if name in CODE_NAMES or name in PENDING_SETTINGS:
        why = "read by the code" if name in CODE_NAMES else "not implemented yet"
        undocumented.setdefault(name, (why, []))[1].append(where)
        return
    err(f"{where}: {name} is not a known setting (README Configuration table)")


# --------------------------------------------------------- k8s utilities ----

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
GO_EXP = re.compile(r"^-?\d(\.\d+)?e[+-]\d\d+$")


def quantity(q):
    """Kubernetes quantity to bytes/units (int), None when unparsable."""
    if isinstance(q, (int, float)) and not isinstance(q, bool):
        return int(q)
    m = re.match(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$", str(q))
    if not m:
        return None
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "m": 0.001}[m.group(2)]
    return int(float(m.group(1)) * mult)


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def env_map(c):
    return {e.get("name"): e for e in (c.get("env") or []) if isinstance(e, dict)}


def env_value(c, name):
    e = env_map(c).get(name)
    return e.get("value") if e else None


def check_meta(doc, where):
    md = doc.get("metadata") or {}
    name = md.get("name")
    if not doc.get("apiVersion") or not doc.get("kind") or not name:
        err(f"{where}: apiVersion, kind and metadata.name are required")
        return
    limit_label = doc["kind"] in ("Service", "StatefulSet")
    if not isinstance(name, str) or not (DNS1123_LABEL if limit_label else DNS1123_SUB).match(name) \
            or len(name) > (63 if limit_label else 253):
        err(f"{where}: bad name {name!r}")
    for k, v in (md.get("labels") or {}).items():
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
            err(f"{where}: label {k}={v!r} is not a valid label value (a string of at most 63 characters)")


def check_env(c, where):
    names = []
    for i, e in enumerate(c.get("env") or []):
        w = f"{where} env[{i}]"
        if not isinstance(e, dict) or "name" not in e:
            err(f"{w}: needs a name")
            continue
        n = e["name"]
        w = f"{where} env {n}"
        if n in names:
            err(f"{w}: defined twice")
        if ("value" in e) == ("valueFrom" in e):
            err(f"{w}: exactly one of value and valueFrom")
        if "value" in e:
            v = e["value"]
            if not isinstance(v, str):
                err(f"{w}: value must be a string, got {type(v).__name__} {v!r} (quote it)")
            else:
                if GO_EXP.match(v):
                    err(f"{w}: {v!r} is a number printed in exponent form (pipe it through int64)")
                for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", v):
                    if ref not in names:
                        err(f"{w}: $({ref}) is not defined earlier in the list (Kubernetes leaves it as is)")
                if INT_SETTING.search(n) and n.startswith("KAFSCALE_") and not re.match(r"^\d+[kmgKMG]?$", v):
                    err(f"{w}: {v!r} is not an integer")
        else:
            vf = e["valueFrom"]
            if not isinstance(vf, dict) or len(vf) != 1:
                err(f"{w}: valueFrom needs exactly one source")
        if n.startswith("KAFSCALE_") or n.startswith("AWS_"):
            check_setting_name(n, w)
        names.append(n)


def check_workload(docs, where, expect):
    """docs: [(source, doc)] of one deployment (rendered chart or plain
    manifest). expect: {"drain": bool, "hpa": bool, "servicemonitor": bool}."""
    by_kind = {}
    seen = set()
    for src, d in docs:
        check_meta(d, src)
        key = (d.get("kind"), (d.get("metadata") or {}).get("name"))
        if key in seen:
            err(f"{src}: {key[0]} {key[1]} defined twice")
        seen.add(key)
        by_kind.setdefault(d.get("kind"), []).append((src, d))

    stss = by_kind.get("StatefulSet", [])
    if len(stss) != 1:
        err(f"{where}: expected one StatefulSet, found {len(stss)}")
        return
    src, sts = stss[0]
    w = f"{src} StatefulSet {sts['metadata']['name']}"
    spec = sts.get("spec") or {}
    tmpl = spec.get("template") or {}
    pod_labels = (tmpl.get("metadata") or {}).get("labels") or {}
    pod = tmpl.get("spec") or {}
    if not selects((spec.get("selector") or {}).get("matchLabels"), pod_labels):
        err(f"{w}: selector.matchLabels does not select the pod template's labels")
    services = {d["metadata"]["name"]: (s, d) for s, d in by_kind.get("Service", [])}
    hl = services.get(spec.get("serviceName"))
    if not hl or (hl[1].get("spec") or {}).get("clusterIP") != "None":
        err(f"{w}: serviceName {spec.get('serviceName')!r} is not a headless Service of this deployment")

    init = pod.get("initContainers") or []
    main = pod.get("containers") or []
    conts = {}
    for c in init + main:
        if c.get("name") in conts:
            err(f"{w}: container {c.get('name')} defined twice")
        conts[c.get("name")] = c
    for name in ("broker", "flusher", "cached"):
        if name not in conts:
            err(f"{w}: no {name} container")
    if any(c.get("name") == "broker" for c in init):
        err(f"{w}: the broker must be a regular container")
    for c in init:
        if c.get("name") in ("flusher", "cached") and c.get("restartPolicy") != "Always":
            err(f"{w}: init container {c.get('name')} needs restartPolicy: Always (a native sidecar)")
    if len(conts) < 3 or not all(n in conts for n in ("broker", "flusher", "cached")):
        return
    images = {c.get("image") for c in conts.values()}
    if len(images) != 1:
        err(f"{w}: the three containers should run one image, got {sorted(map(str, images))}")
    for name, c in conts.items():
        cw = f"{w} container {name}"
        cmd = " ".join(map(str, (c.get("command") or []) + (c.get("args") or [])))
        if f"kafscale-{name}" not in cmd:
            err(f"{cw}: command does not run kafscale-{name}: {cmd!r}")
        check_env(c, cw)
        if env_value(c, "KAFSCALE_SUPERVISE") not in ("0", "false"):
            err(f"{cw}: KAFSCALE_SUPERVISE must be 0 (each process is its own container)")
        if "KAFSCALE_BROKER_ID" not in env_map(c) and "KAFSCALE_BROKER_ID" not in cmd:
            err(f"{cw}: needs KAFSCALE_BROKER_ID (the ordinal; the default shm ring name derives from it)")
    if env_value(conts["broker"], "KAFSCALE_SHM_NAME") != env_value(conts["cached"], "KAFSCALE_SHM_NAME"):
        err(f"{w}: broker and cached must agree on KAFSCALE_SHM_NAME")

    vols = {v.get("name"): v for v in pod.get("volumes") or []}
    vcts = {(t.get("metadata") or {}).get("name") for t in spec.get("volumeClaimTemplates") or []}
    for vn in vols:
        if vn in vcts:
            err(f"{w}: volume {vn} is both a pod volume and a volumeClaimTemplate")

    def mount_of(c, path):
        for m in c.get("volumeMounts") or []:
            if m.get("mountPath") == path:
                return m.get("name")
        return None

    for name, c in conts.items():
        for m in c.get("volumeMounts") or []:
            if m.get("name") not in vols and m.get("name") not in vcts:
                err(f"{w} container {name}: volumeMount {m.get('name')} has no volume")
    # shared directories
    for setting in ("KAFSCALE_RUN_DIR", "KAFSCALE_DATA_DIR"):
        paths = {env_value(c, setting) for c in conts.values()}
        if len(paths) != 1 or None in paths:
            err(f"{w}: {setting} must be set to the same path in the three containers, got {sorted(map(str, paths))}")
            continue
        path = paths.pop()
        vnames = {mount_of(c, path) for c in conts.values()}
        if len(vnames) != 1 or None in vnames:
            err(f"{w}: {setting}={path} must be one volume mounted there in all three containers")
    # /dev/shm
    for name in ("broker", "cached"):
        vn = mount_of(conts[name], "/dev/shm")
        v = vols.get(vn)
        if not v or (v.get("emptyDir") or {}).get("medium") != "Memory":
            err(f"{w} container {name}: /dev/shm must be an emptyDir with medium: Memory")
            continue
        limit = quantity((v.get("emptyDir") or {}).get("sizeLimit"))
        if limit is None:
            err(f"{w}: the /dev/shm volume needs a sizeLimit")
            continue
        cb = env_value(conts["cached"], "KAFSCALE_CACHE_BYTES")
        if cb and re.match(r"^\d+$", cb) and int(cb) > limit:
            err(f"{w}: KAFSCALE_CACHE_BYTES {cb} does not fit the /dev/shm sizeLimit ({limit} bytes)")
    if mount_of(conts["broker"], "/dev/shm") != mount_of(conts["cached"], "/dev/shm"):
        err(f"{w}: broker and cached must share one /dev/shm volume")
    cb = env_value(conts["cached"], "KAFSCALE_CACHE_BYTES")
    mem = quantity(((conts["cached"].get("resources") or {}).get("limits") or {}).get("memory", "")) \
        if ((conts["cached"].get("resources") or {}).get("limits") or {}).get("memory") else None
    if cb and mem is not None and re.match(r"^\d+$", cb) and mem <= int(cb):
        err(f"{w}: cached's memory limit ({mem}) must exceed KAFSCALE_CACHE_BYTES ({cb}): the shm pages count against it")

    # broker: ports, identity, probes, drain
    b = conts["broker"]
    ports = {p.get("name"): p.get("containerPort") for p in b.get("ports") or []}
    nums = set(ports.values())
    for setting, dflt in (("KAFSCALE_BROKER_ADDR", 9092), ("KAFSCALE_METRICS_ADDR", 9093)):
        v = env_value(b, setting)
        port = int(v.rsplit(":", 1)[1]) if v and re.search(r":\d+$", v) else dflt
        if port not in nums:
            err(f"{w}: the broker listens on {port} ({setting}) but declares no such containerPort")
    if "KAFSCALE_BROKER_HOST" not in env_map(b):
        err(f"{w}: the broker must advertise a host (KAFSCALE_BROKER_HOST)")
    http_port = 9093
    mv = env_value(b, "KAFSCALE_METRICS_ADDR")
    if mv and re.search(r":\d+$", mv):
        http_port = int(mv.rsplit(":", 1)[1])
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        hg = (b.get(probe) or {}).get("httpGet") or {}
        port = hg.get("port")
        port = ports.get(port, port if isinstance(port, int) else None)
        if hg.get("path") != path or port != http_port:
            err(f"{w}: the broker's {probe} must GET {path} on {http_port}")
    for name in ("flusher", "cached"):
        if conts[name].get("ports"):
            pass
    prestop = ((b.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command")
    if expect.get("drain", True):
        if not prestop or "drain" not in " ".join(map(str, prestop)).lower():
            err(f"{w}: the broker needs a preStop hook that drains "
                f"(kafscale-ctl drain or POST /control/v1/DrainPartitions)")
    elif prestop:
        err(f"{w}: drain disabled but a preStop hook is present")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    st = env_value(b, "KAFSCALE_SHUTDOWN_TIMEOUT_MS") or "30000"
    if re.match(r"^\d+$", st) and grace * 1000 <= int(st):
        err(f"{w}: terminationGracePeriodSeconds {grace} does not cover KAFSCALE_SHUTDOWN_TIMEOUT_MS {st}")
    # Secrets referenced and defined here must hold the keys
    secrets = {d["metadata"]["name"]: d for _, d in by_kind.get("Secret", [])}
    for name, c in conts.items():
        for e in c.get("env") or []:
            ref = ((e.get("valueFrom") or {}).get("secretKeyRef")) if isinstance(e, dict) else None
            if not ref:
                continue
            s = secrets.get(ref.get("name"))
            if s is not None:
                keys = set((s.get("data") or {}).keys()) | set((s.get("stringData") or {}).keys())
                if ref.get("key") not in keys and not ref.get("optional"):
                    err(f"{w} container {name}: Secret {ref.get('name')} has no key {ref.get('key')}")

    # Services
    bports = {p.get("name") for p in b.get("ports") or []} | nums
    svc_ports = set()
    for name, (s, d) in services.items():
        sspec = d.get("spec") or {}
        if not selects(sspec.get("selector"), pod_labels):
            err(f"{s}: Service {name} selects no broker pod")
        for p in sspec.get("ports") or []:
            svc_ports.add(p.get("port"))
            if p.get("targetPort", p.get("port")) not in bports:
                err(f"{s}: Service {name} port {p.get('name')} targets {p.get('targetPort')!r}, not a broker port")
    for port in (9092, 9093):
        if port not in svc_ports:
            err(f"{where}: no Service exposes {port}")
    if len(services) < 2:
        err(f"{where}: expected a headless and a client Service")
    # PDB / HPA / ServiceMonitor
    pdbs = by_kind.get("PodDisruptionBudget", [])
    if expect.get("pdb", True) and not pdbs:
        err(f"{where}: no PodDisruptionBudget")
    for s, d in pdbs:
        if not selects(((d.get("spec") or {}).get("selector") or {}).get("matchLabels"), pod_labels):
            err(f"{s}: the PodDisruptionBudget selects no broker pod")
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    if bool(hpas) != expect.get("hpa", False):
        err(f"{where}: HorizontalPodAutoscaler expected: {expect.get('hpa', False)}, found {len(hpas)}")
    for s, d in hpas:
        ref = (d.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("kind") != "StatefulSet" or ref.get("name") != sts["metadata"]["name"]:
            err(f"{s}: the HPA does not target the StatefulSet")
        if "replicas" in spec:
            err(f"{w}: with an HPA the StatefulSet must not set replicas (each upgrade would reset them)")
        if d["spec"].get("minReplicas", 1) > d["spec"].get("maxReplicas", 0):
            err(f"{s}: minReplicas > maxReplicas")
    sms = by_kind.get("ServiceMonitor", [])
    if bool(sms) != expect.get("servicemonitor", False):
        err(f"{where}: ServiceMonitor expected: {expect.get('servicemonitor', False)}, found {len(sms)}")
    for s, d in sms:
        sel = ((d.get("spec") or {}).get("selector") or {}).get("matchLabels")
        hit = [n for n, (_, sd) in services.items() if selects(sel, (sd.get("metadata") or {}).get("labels") or {})]
        if len(hit) != 1:
            err(f"{s}: the ServiceMonitor must select exactly one Service, selects {hit}")
            continue
        names = {p.get("name") for p in services[hit[0]][1]["spec"].get("ports") or []}
        for ep in d["spec"].get("endpoints") or []:
            if ep.get("port") not in names:
                err(f"{s}: endpoint port {ep.get('port')} is not a port of Service {hit[0]}")
            if ep.get("path") != "/metrics":
                err(f"{s}: endpoint path must be /metrics")
    sa = pod.get("serviceAccountName")
    sas = {d["metadata"]["name"] for _, d in by_kind.get("ServiceAccount", [])}
    if sas and sa not in sas:
        err(f"{w}: serviceAccountName {sa} is not the ServiceAccount defined here ({sorted(sas)})")


def load_docs(text, src):
    try:
        return [(src, d) for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        err(f"{src}: not YAML: {e}")
        return []


# ------------------------------------------------------------------ chart ----

def values_paths(v, prefix=""):
    """Leaf paths of values.yaml (maps are walked; lists, scalars and empty
    maps are leaves)."""
    out = set()
    if isinstance(v, dict) and v:
        for k, x in v.items():
            out |= values_paths(x, f"{prefix}.{k}" if prefix else k)
    else:
        out.add(prefix)
    return out


def has_path(values, path):
    cur = values
    for p in path.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return False
        cur = cur[p]
    return True


def deep_merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


FULL = {   # every option on
    "replicaCount": 3,
    "image": {"tag": "1.2.3"},
    "imagePullSecrets": [{"name": "registry"}],
    "config": {"KAFSCALE_MAX_UNFLUSHED_BYTES": 536870912, "KAFSCALE_IDLE_TIMEOUT_MS": "600000"},
    "broker": {"idSource": "hostname", "extraEnv": [{"name": "KAFSCALE_TAIL_BYTES", "value": "134217728"}]},
    "flusher": {"flushIntervalMs": 50, "extraEnv": [{"name": "KAFSCALE_S3_MAX_INFLIGHT", "value": "32"}]},
    "cached": {"extraEnv": [{"name": "KAFSCALE_S3_TIMEOUT_MS", "value": "10000"}]},
    "persistence": {"enabled": False},
    "s3": {"bucket": "kafscale-test", "region": "eu-west-1", "endpoint": "http://minio.minio.svc:9000",
           "pathStyle": "true", "kmsArn": "arn:aws:kms:eu-west-1:123456789012:key/k",
           "readBucket": "kafscale-test-replica", "readRegion": "eu-central-1",
           "readEndpoint": "http://minio2.minio.svc:9000",
           "credentials": {"create": True, "accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret"}},
    "etcd": {"endpoints": ["http://etcd-0.etcd:2379", "http://etcd-1.etcd:2379"],
             "credentials": {"existingSecret": "kafscale-etcd"}},
    "drain": {"method": "curl"},
    "autoscaling": {"enabled": True},
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}, "name": "kafscale-sa"},
    "service": {"annotations": {"a": "b"}},
    "podAnnotations": {"prometheus.io/scrape": "true"},
    "podLabels": {"team": "streaming"},
    "priorityClassName": "high",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "kafscale", "effect": "NoSchedule"}],
    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                   "whenUnsatisfiable": "ScheduleAnyway",
                                   "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "kafscale"}}}],
}
SINGLE_LB = {   # one broker behind a load balancer, options off
    "fullnameOverride": "ks",
    "nameOverride": "kafscale",
    "broker": {"advertisedHost": "kafka.example.com", "advertisedPort": 9092},
    "service": {"type": "LoadBalancer"},
    "drain": {"enabled": False},
    "podDisruptionBudget": {"enabled": False},
    "serviceAccount": {"create": False},
    "persistence": {"storageClass": "fast"},
    "s3": {"bucket": "b", "credentials": {"existingSecret": "s3-creds"}},
}
VARIANTS = [
    ("default", {}, {"drain": True, "pdb": True}),
    ("full", FULL, {"drain": True, "pdb": True, "hpa": True, "servicemonitor": True}),
    ("single-lb", SINGLE_LB, {"drain": False, "pdb": False}),
]
REFUSED = [   # values the chart must refuse, and a word of the message
    ("three brokers without etcd", {"replicaCount": 3}, "etcd"),
    ("autoscaling without etcd", {"autoscaling": {"enabled": True}}, "etcd"),
    ("unknown drain method", {"drain": {"method": "kubectl"}}, "drain.method"),
    ("unknown idSource", {"broker": {"idSource": "random"}}, "idSource"),
    ("two sources of S3 credentials", {"s3": {"credentials": {"create": True, "existingSecret": "x",
                                                              "accessKeyId": "a", "secretAccessKey": "b"}}},
     "s3.credentials"),
    ("created Secret without keys", {"s3": {"credentials": {"create": True}}}, "accessKeyId"),
]


def check_chart(outdir):
    chart_yaml = yaml.safe_load(open(os.path.join(CHART, "Chart.yaml")))
    if chart_yaml.get("apiVersion") != "v2":
        err("Chart.yaml: apiVersion must be v2")
    if chart_yaml.get("name") != os.path.basename(CHART):
        err("Chart.yaml: name must match the chart directory")
    if not re.match(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$", str(chart_yaml.get("version", ""))):
        err("Chart.yaml: version must be SemVer 2")
    if not chart_yaml.get("appVersion"):
        err("Chart.yaml: appVersion missing")
    values = yaml.safe_load(open(os.path.join(CHART, "values.yaml"))) or {}

    tdir = os.path.join(CHART, "templates")
    files = {}
    for f in sorted(os.listdir(tdir)):
        p = os.path.join(tdir, f)
        if os.path.isfile(p):
            files[f] = open(p).read()
    for f in files:
        if not (f.endswith((".yaml", ".tpl")) or f == "NOTES.txt"):
            err(f"templates/{f}: unexpected file (templates are .yaml, helpers .tpl, and NOTES.txt)")
    # (1) every .Values reference is defined
    refs = 0
    for f, text in files.items():
        for m in re.finditer(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
            refs += 1
            path = m.group(1)[1:]
            if not has_path(values, path):
                line = text.count("\n", 0, m.start()) + 1
                err(f"templates/{f}:{line}: .Values.{path} is not defined in values.yaml")
    # (2) render the variants
    used = set()
    release = {"name": "kafscale", "namespace": "kafscale"}
    for vname, over, expect in VARIANTS:
        vals = deep_merge(values, over)
        tr = gotmpl.Tracker()
        try:
            out = gotmpl.render_chart(files, vals, chart_yaml, release, tr)
        except gotmpl.RenderFail as e:
            err(f"chart ({vname} values): refused: {e}")
            continue
        except gotmpl.TemplateError as e:
            err(f"chart ({vname} values): {e}")
            continue
        for path, where in tr.missing:
            p = path[len("Values."):]
            if not (vname != "default" and has_path(over, p)):
                err(f"{where}: reads .{path}, which values.yaml does not define ({vname} values)")
        used |= {u[len("Values."):] for u in tr.used if u.startswith("Values.")}
        vdir = os.path.join(outdir, vname) if outdir else None
        if vdir:
            os.makedirs(vdir, exist_ok=True)
        docs = []
        for f, text in sorted(out.items()):
            if f == "NOTES.txt":
                if "<no value>" in text or not text.strip():
                    err(f"templates/NOTES.txt ({vname} values): renders empty or with <no value>")
                continue
            if "<no value>" in text:
                err(f"templates/{f} ({vname} values): renders <no value>")
            parts = [p.strip() for p in re.split(r"(?m)^---\s*$", text)]
            kept = []
            for p in parts:
                if not p:
                    continue
                try:
                    d = yaml.safe_load(p)
                except yaml.YAMLError as e:
                    err(f"templates/{f} ({vname} values): rendered output is not YAML: {e}")
                    continue
                if d is None:
                    continue
                kept.append(p)
                docs.append((f"templates/{f} ({vname})", d))
            if vdir and kept:
                with open(os.path.join(vdir, f), "w") as fh:
                    for p in kept:
                        fh.write(f"---\n# Source: kafscale/templates/{f}\n{p}\n")
        check_workload(docs, f"chart ({vname} values)", expect)
    for name, over, word in REFUSED:
        tr = gotmpl.Tracker()
        try:
            gotmpl.render_chart(files, deep_merge(values, over), chart_yaml, release, tr)
            err(f"chart: accepted values it must refuse: {name}")
        except gotmpl.RenderFail as e:
            if word not in str(e):
                err(f"chart: refused {name} with an unclear message: {e}")
        except gotmpl.TemplateError as e:
            err(f"chart ({name}): {e}")
    # (3) values nobody reads
    for leaf in sorted(values_paths(values)):
        parts = leaf.split(".")
        if not any(".".join(parts[:i]) in used for i in range(1, len(parts) + 1)):
            err(f"values.yaml: {leaf} is read by no template")
    # (4) values.yaml settings names
    for k in (values.get("config") or {}):
        check_setting_name(k, "values.yaml config")
    return refs


# ------------------------------------------------------------------- CRDs ----

def check_structural(schema, path, where):
    if not isinstance(schema, dict):
        err(f"{where}: schema at {path} is not a map")
        return
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields") \
            and not schema.get("x-kubernetes-int-or-string"):
        err(f"{where}: schema at {path} has no type (CRD schemas must be structural)")
    for k, sub in (schema.get("properties") or {}).items():
        check_structural(sub, f"{path}.{k}", where)
    if isinstance(schema.get("items"), dict):
        check_structural(schema["items"], f"{path}[]", where)
    if isinstance(schema.get("additionalProperties"), dict):
        check_structural(schema["additionalProperties"], f"{path}.*", where)


def validate(obj, schema, path, where):
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t == "integer":
        if isinstance(obj, bool) or not isinstance(obj, int):
            err(f"{where}: {path} must be an integer, got {obj!r}")
            return
    elif t == "number":
        if isinstance(obj, bool) or not isinstance(obj, (int, float)):
            err(f"{where}: {path} must be a number, got {obj!r}")
            return
    elif t in types and not isinstance(obj, types[t]):
        err(f"{where}: {path} must be {t}, got {type(obj).__name__} {obj!r}")
        return
    if "enum" in schema and obj not in schema["enum"]:
        err(f"{where}: {path} must be one of {schema['enum']}, got {obj!r}")
    if "minimum" in schema and isinstance(obj, (int, float)) and obj < schema["minimum"]:
        err(f"{where}: {path} below minimum {schema['minimum']}")
    if "maximum" in schema and isinstance(obj, (int, float)) and obj > schema["maximum"]:
        err(f"{where}: {path} above maximum {schema['maximum']}")
    if isinstance(obj, str):
        if "minLength" in schema and len(obj) < schema["minLength"]:
            err(f"{where}: {path} shorter than {schema['minLength']}")
        if "maxLength" in schema and len(obj) > schema["maxLength"]:
            err(f"{where}: {path} longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], obj):
            err(f"{where}: {path} does not match {schema['pattern']}")
    if isinstance(obj, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return
        props = schema.get("properties") or {}
        for r in schema.get("required") or []:
            if r not in obj:
                err(f"{where}: {path}.{r} is required")
        addl = schema.get("additionalProperties")
        for k, v in obj.items():
            if k in props:
                validate(v, props[k], f"{path}.{k}", where)
            elif isinstance(addl, dict):
                validate(v, addl, f"{path}.{k}", where)
            elif t == "object" and path != "" and not (path == ".metadata"):
                err(f"{where}: {path}.{k} is not in the schema (the API server would drop it)")
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, x in enumerate(obj):
            validate(x, schema["items"], f"{path}[{i}]", where)


def topic_config_names():
    p = os.path.join(ROOT, "broker", "topic_config.c")
    if not os.path.exists(p):
        return None
    return set(re.findall(r'"([a-z]+(?:\.[a-z]+)+)"', open(p).read()))


def check_crds():
    crds = {}
    cdir = os.path.join(CHART, "crds")
    for f in sorted(os.listdir(cdir)):
        src = f"crds/{f}"
        for _, d in load_docs(open(os.path.join(cdir, f)).read(), src):
            check_meta(d, src)
            if d.get("apiVersion") != "apiextensions.k8s.io/v1" or d.get("kind") != "CustomResourceDefinition":
                err(f"{src}: not an apiextensions.k8s.io/v1 CustomResourceDefinition")
                continue
            spec = d["spec"]
            names = spec.get("names") or {}
            if d["metadata"]["name"] != f"{names.get('plural')}.{spec.get('group')}":
                err(f"{src}: metadata.name must be <plural>.<group>")
            vers = spec.get("versions") or []
            if sum(1 for v in vers if v.get("storage")) != 1:
                err(f"{src}: exactly one version must be the storage version")
            for v in vers:
                sch = ((v.get("schema") or {}).get("openAPIV3Schema"))
                if not sch:
                    err(f"{src}: version {v.get('name')} has no openAPIV3Schema")
                    continue
                check_structural(sch, "", src)
                crds[(f"{spec.get('group')}/{v.get('name')}", names.get("kind"))] = sch
    for want in ("KafscaleCluster", "KafscaleTopic"):
        if not any(k[1] == want for k in crds):
            err(f"crds/: no CRD for {want}")
    tnames = topic_config_names()
    for f in ("kafscalecluster.yaml", "kafscaletopic.yaml"):
        src = f"samples/{f}"
        docs = load_docs(open(os.path.join(SAMPLES, f)).read(), src)
        if not docs:
            err(f"{src}: no resource")
        for _, d in docs:
            check_meta(d, src)
            sch = crds.get((d.get("apiVersion"), d.get("kind")))
            if sch is None:
                err(f"{src}: {d.get('apiVersion')} {d.get('kind')} has no CRD in helm/kafscale/crds")
                continue
            validate(d, sch, "", src)
            spec = d.get("spec") or {}
            if d.get("kind") == "KafscaleCluster":
                for k in (spec.get("config") or {}):
                    check_setting_name(k, f"{src} spec.config")
                cache = spec.get("cache") or {}
                lim = quantity(cache.get("shmSizeLimit", "")) if cache.get("shmSizeLimit") else None
                if lim is not None and cache.get("bytes", 0) > lim:
                    err(f"{src}: spec.cache.bytes does not fit spec.cache.shmSizeLimit")
            if d.get("kind") == "KafscaleTopic" and tnames is not None:
                for k in (spec.get("config") or {}):
                    if k not in tnames:
                        err(f"{src}: topic config {k} is not one the broker knows (broker/topic_config.c)")


# ---------------------------------------------------------- plain manifest ----

def check_plain_manifest():
    src = "samples/kubernetes/kafscale.yaml"
    text = open(os.path.join(ROOT, src)).read()
    if "{{" in text:
        err(f"{src}: a plain manifest must not contain template actions")
    docs = load_docs(text, src)
    check_workload(docs, src, {"drain": True, "pdb": True})
    secrets = [d for _, d in docs if d.get("kind") == "Secret"]
    if not any(set((s.get("stringData") or {}).keys()) | set((s.get("data") or {}).keys())
               >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} for s in secrets):
        err(f"{src}: expected a Secret with the S3 credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
    refs = set()
    for _, d in docs:
        if d.get("kind") != "StatefulSet":
            continue
        pod = d["spec"]["template"]["spec"]
        for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            for e in c.get("env") or []:
                r = (e.get("valueFrom") or {}).get("secretKeyRef")
                if r:
                    refs.add(r.get("key"))
            for ef in c.get("envFrom") or []:
                if ef.get("secretRef"):
                    refs.add("*")
    if not ({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= refs or "*" in refs):
        err(f"{src}: the containers must take the S3 credentials from the Secret")


# ---------------------------------------------------------------- systemd ----

def parse_unit(path):
    sections, cur = {}, None
    for raw in open(path):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            cur = line.strip("[]")
            sections.setdefault(cur, {})
            continue
        k, _, v = line.partition("=")
        sections[cur].setdefault(k.strip(), []).append(v.strip())
    return sections


def check_systemd():
    env_path = os.path.join(SAMPLES, "kafscale.env")
    env, mentioned = {}, set()
    for i, raw in enumerate(open(env_path), 1):
        line = raw.rstrip("\n")
        w = f"samples/kafscale.env:{i}"
        m = re.match(r"^#\s?([A-Z][A-Z0-9_]*)=", line)
        if m:
            mentioned.add(m.group(1))
            check_setting_name(m.group(1), w)
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if not m:
            err(f"{w}: not KEY=VALUE")
            continue
        k, v = m.groups()
        if k in env:
            err(f"{w}: {k} set twice")
        env[k] = v
        mentioned.add(k)
        check_setting_name(k, w)
        if k == "KAFSCALE_SUPERVISE":
            err(f"{w}: KAFSCALE_SUPERVISE belongs in the units (Environment=), after the file is read")
    for n in sorted(README_NAMES - mentioned):
        if n.startswith("KAFSCALE_") and n not in ("KAFSCALE_SUPERVISE", "KAFSCALE_FLUSHER_BIN"):
            warn(f"samples/kafscale.env: does not document {n}")
    data_dir = env.get("KAFSCALE_DATA_DIR")
    run_dir = env.get("KAFSCALE_RUN_DIR")
    units = {}
    for proc in ("broker", "flusher", "cached"):
        p = os.path.join(SAMPLES, f"kafscale-{proc}.service")
        if not os.path.exists(p):
            err(f"samples/kafscale-{proc}.service missing")
            continue
        units[proc] = parse_unit(p)
    for proc, u in units.items():
        w = f"samples/kafscale-{proc}.service"
        s, un, ins = u.get("Service", {}), u.get("Unit", {}), u.get("Install", {})

        def has(sec, key, val=None):
            vals = sec.get(key, [])
            return bool(vals) if val is None else any(val in v.split() or v == val for v in vals)
        if not any(x.endswith(f"/kafscale-{proc}") for x in s.get("ExecStart", [])):
            err(f"{w}: ExecStart must run kafscale-{proc}")
        if "KAFSCALE_SUPERVISE=0" not in " ".join(s.get("Environment", [])):
            err(f"{w}: needs Environment=KAFSCALE_SUPERVISE=0")
        for key, val in (("Restart", "on-failure"), ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                         ("PrivateTmp", "yes"), ("ProtectHome", "yes")):
            if not has(s, key, val):
                err(f"{w}: needs {key}={val}")
        if not has(s, "EnvironmentFile"):
            err(f"{w}: needs EnvironmentFile=")
        rw = " ".join(s.get("ReadWritePaths", [])).split()
        for d, name in ((data_dir, "KAFSCALE_DATA_DIR"), (run_dir, "KAFSCALE_RUN_DIR")):
            if d and d not in [x.lstrip("-") for x in rw]:
                err(f"{w}: ReadWritePaths must include {d} ({name} in kafscale.env)")
        if s.get("User", ["root"])[0] == "root":
            err(f"{w}: must not run as root (User=)")
        if not has(un, "PartOf", "kafscale.target"):
            err(f"{w}: needs PartOf=kafscale.target")
        if not has(ins, "WantedBy", "kafscale.target"):
            err(f"{w}: needs WantedBy=kafscale.target")
    if "broker" in units:
        after = " ".join(units["broker"].get("Unit", {}).get("After", [])).split()
        for p in ("flusher", "cached"):
            if f"kafscale-{p}.service" not in after:
                err(f"samples/kafscale-broker.service: must start After=kafscale-{p}.service")
    t = parse_unit(os.path.join(SAMPLES, "kafscale.target"))
    wants = " ".join(t.get("Unit", {}).get("Wants", [])).split()
    for p in ("broker", "flusher", "cached"):
        if f"kafscale-{p}.service" not in wants:
            err(f"samples/kafscale.target: must Want kafscale-{p}.service")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="write the rendered chart here (one directory per values variant)")
    a = ap.parse_args()
    if not README_NAMES:
        err("README.md: no settings found in the Configuration table")
    refs = check_chart(a.out)
    check_crds()
    check_plain_manifest()
    check_systemd()
    for name, (why, wheres) in sorted(undocumented.items()):
        warn(f"{name} ({why}) is used in {len(wheres)} places (first {wheres[0]}) "
             f"but is missing from the README's Configuration table")
    for w in sorted(set(warnings)):
        print(f"warning: {w}")
    for e in errors:
        print(f"error: {e}")
    print(f"check_chart: {refs} .Values references, {len(VARIANTS)} value sets rendered, "
          f"{len(REFUSED)} refusals, {len(errors)} errors, {len(set(warnings))} warnings")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
