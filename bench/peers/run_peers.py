#!/usr/bin/env python3
"""towerrt against PyTorch (eager, TorchScript) and ONNX Runtime (CPU EP) on
the same IntTower request, the same weights and item store, the same k
values, in one run; prints one side-by-side table (candidates/s and p99 per
k and thread count) with the ratios, and writes it as Markdown and JSON.

What is timed, for every implementation: one request = one user's tower
(embeddings, Light-SE, the tower layers up to the last scored FE layer, the
user FE projections: 96 x 64 user heads for the reference model) + the k
candidates' item heads taken from the item store + MaxSim + sigmoid. The
user tower is included in all of them. towerrt resolves k external item ids
through its id map; the peers gather k rows by index (less work for them).
Random users and random distinct candidates are drawn outside the timed
region; latency is wall time per request.

Threads: torch.set_num_threads(t), ORT intra_op_num_threads = t, and towerrt
--threads t (the caller + t - 1 pool workers; one thread only if the runtime
has no pool). Ratios compare the same thread count. The CPU share column
(process CPU time / wall time) shows whether t threads really ran.

Usage (from the repository root, after building towerrt):
  bash bench/peers/setup.sh                  # once: a venv with torch + onnxruntime
  build-peers/venv/bin/python bench/peers/run_peers.py --towerrt build/towerrt
  python3 bench/peers/run_peers.py --install --towerrt build/towerrt   # both at once
Options: --k 10,100,... --threads 1,2 --requests N --seconds S --fe trained|0+1+2
         --model M.twr --items S.twi (default: towerrt's synthetic reference model)
         --md OUT.md --json OUT.json --peers eager,torchscript,onnxruntime
         --towerrt-precisions f32,bf16,int8   (bf16/int8: the model's user tower and the
         item store quantized by `towerrt quantize`, timed in the same run; a second
         table compares each precision with the fp32 peers)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_VENV = os.path.join(ROOT, "build-peers", "venv")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--towerrt", default=None, help="the towerrt binary (default: build*/towerrt)")
    p.add_argument("--model", help=".twr (default: the synthetic reference model)")
    p.add_argument("--items", help=".twi matching --model")
    p.add_argument("--catalog", type=int, default=None, help="synthetic store size (the preset's: 100000)")
    p.add_argument("--preset", default="reference", help="synthetic model preset: reference or tiny")
    p.add_argument("--workdir", default=None, help="folder of the synthetic files and exports")
    p.add_argument("--k", default="10,100,1000,10000,100000")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--fe", default="trained", help="trained, or user layers joined by '+' (as towerrt bench --fe)")
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0, help="time budget per point")
    p.add_argument("--min-requests", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--peers", default="eager,torchscript,onnxruntime")
    p.add_argument("--towerrt-precisions", default="f32",
                   help="f32 and/or bf16, int8: towerrt with a quantized user tower and item store")
    p.add_argument("--md", help="write the table as Markdown")
    p.add_argument("--json", help="write every number as JSON")
    p.add_argument("--install", action="store_true", help="run setup.sh, then continue in its venv")
    p.add_argument("--venv", default=DEFAULT_VENV)
    p.add_argument("--check-only", action="store_true", help="only the parity check")
    return p.parse_args(argv)


def find_towerrt(given):
    if given:
        return os.path.abspath(given)
    for d in ("build", "build-bench", "build-test", "build-release"):
        c = os.path.join(ROOT, d, "towerrt")
        if os.access(c, os.X_OK):
            return c
    sys.exit("run_peers: give --towerrt PATH (the built towerrt binary)")


def install_and_reexec(a, argv):
    venv_py = os.path.join(a.venv, "bin", "python")
    subprocess.check_call(["bash", os.path.join(HERE, "setup.sh"), a.venv])
    args = [x for x in argv if x != "--install"]
    os.execv(venv_py, [venv_py, os.path.abspath(__file__)] + args)


def blas_threads(t):
    """torch.set_num_threads does not reach the BLAS: Debian's torch calls the
    system libblas.so.3 (OpenBLAS, with its own thread pool of one thread
    per core). Set OpenBLAS's count too, so that t threads means t threads."""
    import ctypes
    done = []
    with open("/proc/self/maps") as f:
        libs = sorted(set(line.split()[-1] for line in f if "blas" in line.split()[-1]))
    for lib in libs:
        try:
            fn = getattr(ctypes.CDLL(lib), "openblas_set_num_threads")
        except (OSError, AttributeError):
            continue
        fn(ctypes.c_int(t))
        done.append(lib)
    return done


def percentile(sorted_v, p):
    import math
    if not sorted_v:
        return float("nan")
    i = max(1, int(math.ceil(p / 100.0 * len(sorted_v)))) - 1
    return sorted_v[min(i, len(sorted_v) - 1)]


def stats(lat_ns, k, cpu_ns=None):
    v = sorted(lat_ns)
    mean = sum(v) / len(v)
    p50 = percentile(v, 50)
    return dict(requests=len(v), p50_us=p50 / 1e3, p90_us=percentile(v, 90) / 1e3,
                p99_us=percentile(v, 99) / 1e3, p999_us=percentile(v, 99.9) / 1e3, mean_us=mean / 1e3,
                cands_per_s=k / (mean * 1e-9), cands_per_s_p50=k / (p50 * 1e-9),
                cpu_p50_us=percentile(sorted(cpu_ns), 50) / 1e3 if cpu_ns else None,
                cpu_share=sum(cpu_ns) / float(sum(lat_ns)) if cpu_ns else None)


def measure(run, make, k, a):
    """Warm-up, then requests until --requests or --seconds (at least --min-requests)."""
    t0 = time.perf_counter()
    for _ in range(a.warmup):
        run(make())
        if time.perf_counter() - t0 > a.seconds / 4:
            break
    lat, cpu = [], []
    t0 = time.perf_counter()
    while len(lat) < a.requests:
        req = make()
        c = time.process_time_ns()
        s = time.perf_counter_ns()
        run(req)
        lat.append(time.perf_counter_ns() - s)
        cpu.append(time.process_time_ns() - c)
        if len(lat) >= a.min_requests and time.perf_counter() - t0 > a.seconds:
            break
    return stats(lat, k, cpu)


def towerrt_points(a, towerrt, model, items, ks, threads):
    """towerrt bench at the same k values and thread counts (one thread only
    if this build's runtime has no thread pool). Returns {(threads, k): point}."""
    out = os.path.join(a.workdir, "towerrt.json")
    base = [towerrt, "bench", "--model", model, "--items", items, "--isa", "best", "--fe", a.fe,
            "--k", ",".join(map(str, ks)), "--requests", str(a.requests), "--warmup", str(a.warmup),
            "--seconds", str(a.seconds), "--min-requests", str(a.min_requests), "--seed", str(a.seed),
            "--json", out, "--quiet"]
    for ts in (threads, [1]):
        cmd = base + ["--threads", ",".join(map(str, ts))]
        print("run_peers: " + " ".join(cmd), file=sys.stderr)
        if subprocess.call(cmd, stdout=sys.stderr) == 0:
            break
        if ts == [1]:
            sys.exit("run_peers: towerrt bench failed")
        print("run_peers: towerrt at threads %s failed; measuring it at 1 thread only" % ts, file=sys.stderr)
    with open(out) as f:
        doc = json.load(f)
    return {(int(p.get("threads", 1)), int(p["k"])): p for p in doc["points"]}, doc


def quantized_files(a, towerrt, precision):
    """The model and store quantized to `precision` (cached in the workdir)."""
    base = os.path.join(a.workdir, "quantized-%s-%s" % (precision, os.path.basename(os.path.dirname(a.model))))
    model, items = base + ".twr", base + ".twi"
    if not os.path.exists(model) or os.path.getmtime(model) < os.path.getmtime(a.model):
        subprocess.check_call([towerrt, "quantize", "--model", a.model, "--precision", precision, "--out", model],
                              stdout=sys.stderr)
    if not os.path.exists(items) or os.path.getmtime(items) < os.path.getmtime(a.items):
        subprocess.check_call([towerrt, "quantize", "--items", a.items, "--precision", precision, "--out", items],
                              stdout=sys.stderr)
    return model, items


def fe_list(a, model):
    if a.fe == "trained":
        return None
    if a.fe == "all":
        return sorted(model.plan[0]["fe"].keys())
    return sorted(int(x) for x in a.fe.split("+"))


def requests_text(model, store, users, cand_rows):
    fields = model.side_fields(0)
    n_dense = sum(f["dim"] for f in fields if f["kind"] == 2)
    lines = ["towerrt-requests 1"]
    for (ids, dense), rows in zip(users, cand_rows):
        u = " ".join(str(int(i)) for i in ids)
        if n_dense:
            u += " ; " + " ".join("%.9g" % float(x) for x in dense)
        lines += ["user " + u, "items " + " ".join(str(int(store.ids[r])) for r in rows), "end"]
    return "\n".join(lines) + "\n"


class Requests(object):
    def __init__(self, model, store, seed):
        import numpy as np
        self.np = np
        self.rng = np.random.default_rng(seed)
        self.n = store.heads.shape[0]
        fields = [f for f in model.side_fields(0) if f["kind"] != 2]
        self.vocab = np.array([f["vocab"] for f in fields for _ in range(f["slots"])], dtype=np.int64)
        self.n_dense = sum(f["dim"] for f in model.side_fields(0) if f["kind"] == 2)

    def user(self):
        ids = (self.rng.random(len(self.vocab)) * self.vocab).astype(self.np.int64)
        return ids, self.rng.random(self.n_dense, dtype=self.np.float32)

    def rows(self, k):
        if k <= self.n:
            return self.rng.choice(self.n, size=k, replace=False).astype(self.np.int64)
        return self.rng.integers(0, self.n, size=k, dtype=self.np.int64)


def main(argv):
    a = parse_args(argv)
    if a.install:
        install_and_reexec(a, argv)
    try:
        import numpy as np
        import torch
    except ImportError as e:
        sys.exit("run_peers: %s. Install the peers first: bash bench/peers/setup.sh (or pass --install)" % e)
    sys.path.insert(0, HERE)
    import twr
    from inttower_torch import IntTowerRequest

    towerrt = find_towerrt(a.towerrt)
    load_start = os.getloadavg()[0]
    ks = [int(x) for x in a.k.split(",")]
    threads = [int(x) for x in a.threads.split(",")]
    peers = [p for p in a.peers.split(",") if p]
    if a.workdir is None:
        a.workdir = os.path.join(tempfile.gettempdir(), "towerrt-peers")
    os.makedirs(a.workdir, exist_ok=True)
    if not a.model:
        synth = os.path.join(a.workdir, "synthetic-%s-%s" % (a.preset, a.catalog or "default"))
        cmd = [towerrt, "bench", "--synthetic", "--preset", a.preset, "--workdir", synth, "--no-sweep"]
        if a.catalog:
            cmd += ["--catalog", str(a.catalog)]
        subprocess.check_call(cmd, stdout=sys.stderr)
        a.model, a.items = os.path.join(synth, "model.twr"), os.path.join(synth, "items.twi")
    elif not a.items:
        sys.exit("run_peers: --model needs --items")

    import warnings
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    model = twr.read_twr(a.model)
    store = twr.read_twi(a.items)
    fe = fe_list(a, model)
    store_t = torch.from_numpy(store.heads)
    torch.matmul(torch.ones(64, 64), torch.ones(64, 64))  # loads the BLAS
    print("run_peers: BLAS thread control: %s" % (blas_threads(1) or "no OpenBLAS found"), file=sys.stderr)
    torch.set_num_interop_threads(1)
    net = IntTowerRequest(model, fe_layers=fe)
    reqs = Requests(model, store, a.seed)

    # ---- parity: towerrt score --logits vs the torch module, on a few requests
    users = [reqs.user() for _ in range(3)]
    cands = [reqs.rows(min(50, reqs.n)) for _ in range(3)]
    req_path = os.path.join(a.workdir, "parity_requests.txt")
    with open(req_path, "w") as f:
        f.write(requests_text(model, store, users, cands))
    cmd = [towerrt, "score", "--model", a.model, "--items", a.items, "--requests", req_path, "--logits"]
    if fe:
        cmd += ["--fe-layers", ",".join(map(str, fe))]
    got = [[float(x) for x in line.split()] for line in subprocess.check_output(cmd).decode().splitlines()]
    ref = IntTowerRequest(model, fe_layers=fe, logits=True)
    worst = 0.0
    with torch.inference_mode():
        for (ids, dense), rows, g in zip(users, cands, got):
            want = ref(torch.from_numpy(ids), torch.from_numpy(dense), torch.from_numpy(rows), store_t).numpy()
            worst = max(worst, float(np.max(np.abs(want - np.array(g, dtype=np.float32)) / (np.abs(want) + 1.0))))
    print("run_peers: parity: towerrt score --logits vs PyTorch on 3 requests x 50 candidates: "
          "max |diff| / (|logit| + 1) = %.3g" % worst, file=sys.stderr)
    if worst > 1e-4:
        sys.exit("run_peers: the PyTorch module does not compute what towerrt computes (%.3g)" % worst)
    if a.check_only:
        return 0

    # ---- the implementations
    impls = {}
    if "eager" in peers:
        impls["pytorch-eager"] = net
    if "torchscript" in peers:
        ids, dense = reqs.user()
        ex = (torch.from_numpy(ids), torch.from_numpy(dense), torch.from_numpy(reqs.rows(16)), store_t)
        traced = torch.jit.trace(net, ex, check_trace=False)
        impls["pytorch-torchscript"] = torch.jit.freeze(traced.eval())
    ort = None
    onnx_path = os.path.join(a.workdir, "inttower_request.onnx")
    if "onnxruntime" in peers:
        try:
            import onnxruntime as ort
        except ImportError:
            print("run_peers: onnxruntime is not installed: the ONNX Runtime column is skipped "
                  "(bash bench/peers/setup.sh)", file=sys.stderr)
        if ort is not None:
            ids, dense = reqs.user()
            small = torch.from_numpy(store.heads[:8].copy())
            torch.onnx.export(net, (torch.from_numpy(ids), torch.from_numpy(dense),
                                    torch.from_numpy(np.arange(4, dtype=np.int64)), small),
                              onnx_path, input_names=["ids", "dense", "rows", "store"], output_names=["scores"],
                              dynamic_axes={"rows": {0: "k"}, "store": {0: "n"}, "scores": {0: "k"}},
                              opset_version=14)

    versions = {"torch": torch.__version__, "numpy": np.__version__}
    if ort is not None:
        versions["onnxruntime"] = ort.__version__
    results = {}  # (impl, threads, k) -> stats

    tr_doc = None

    def make_torch(k):
        def make():
            ids, dense = reqs.user()
            return torch.from_numpy(ids), torch.from_numpy(dense), torch.from_numpy(reqs.rows(k))
        return make

    # Per thread count: towerrt, then each peer, so that the runtimes compared
    # in a row were measured minutes apart at most (the machine may be shared).
    precisions = [p for p in a.towerrt_precisions.split(",") if p]
    variants = [("towerrt" if p == "f32" else "towerrt-" + p,
                 (a.model, a.items) if p == "f32" else quantized_files(a, towerrt, p)) for p in precisions]
    if variants[0][0] != "towerrt":
        variants.insert(0, ("towerrt", (a.model, a.items)))
    for t in threads:
        for vname, (vmodel, vitems) in variants:
            tr, doc = towerrt_points(a, towerrt, vmodel, vitems, ks, [t])
            tr_doc = tr_doc or doc
            for (tt, k), pt in tr.items():
                results[(vname, tt, k)] = dict((key, pt[key]) for key in (
                    "requests", "p50_us", "p90_us", "p99_us", "p999_us", "mean_us", "cands_per_s", "cands_per_s_p50",
                    "cpu_p50_us", "cpu_share") if key in pt)
        torch.set_num_threads(t)
        blas_threads(t)
        for name, mod in impls.items():
            for k in ks:
                def run(req, mod=mod):
                    with torch.inference_mode():
                        mod(req[0], req[1], req[2], store_t)
                print("run_peers: %s threads=%d k=%d" % (name, t, k), file=sys.stderr)
                results[(name, t, k)] = measure(run, make_torch(k), k, a)
        if ort is not None:
            so = ort.SessionOptions()
            so.intra_op_num_threads = t
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
            inputs = set(i.name for i in sess.get_inputs())
            store_ov = ort.OrtValue.ortvalue_from_numpy(store.heads)
            for k in ks:
                def make(k=k):
                    ids, dense = reqs.user()
                    return ids, dense, reqs.rows(k)

                def run(req):
                    b = sess.io_binding()
                    if "ids" in inputs:
                        b.bind_cpu_input("ids", req[0])
                    if "dense" in inputs:
                        b.bind_cpu_input("dense", req[1])
                    b.bind_cpu_input("rows", req[2])
                    b.bind_ortvalue_input("store", store_ov)
                    b.bind_output("scores")
                    sess.run_with_iobinding(b)
                    b.copy_outputs_to_cpu()
                print("run_peers: onnxruntime threads=%d k=%d" % (t, k), file=sys.stderr)
                results[("onnxruntime", t, k)] = measure(run, make, k, a)
            # parity of the exported graph with the eager module (probabilities)
            ids, dense = users[0]
            b = sess.io_binding()
            if "ids" in inputs:
                b.bind_cpu_input("ids", ids)
            if "dense" in inputs:
                b.bind_cpu_input("dense", dense)
            b.bind_cpu_input("rows", cands[0])
            b.bind_ortvalue_input("store", store_ov)
            b.bind_output("scores")
            sess.run_with_iobinding(b)
            got = b.copy_outputs_to_cpu()[0]
            with torch.inference_mode():
                want = net(torch.from_numpy(ids), torch.from_numpy(dense), torch.from_numpy(cands[0]), store_t).numpy()
            d = float(np.max(np.abs(got - want)))
            if d > 1e-5:
                sys.exit("run_peers: the ONNX export differs from the PyTorch module (%.3g)" % d)

    names = ["towerrt"] + [n for n in ("pytorch-eager", "pytorch-torchscript") if n in impls]
    if ort is not None:
        names.append("onnxruntime")
    md = table_markdown(results, names, ks, threads, tr_doc, model, versions, a)
    if len(variants) > 1:
        md += precision_table(results, [v[0] for v in variants], names[1:], ks, threads)
    print(md)
    if a.md:
        with open(a.md, "w") as f:
            f.write(md)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(schema="towerrt-peers/1", machine=tr_doc["machine"], model=tr_doc["model"], versions=versions,
                           loadavg_1m=dict(start=load_start, end=os.getloadavg()[0]),
                           settings=dict(k=ks, threads=threads, fe=a.fe, requests=a.requests, seconds=a.seconds,
                                         warmup=a.warmup, seed=a.seed),
                           points=[dict(runtime=n, threads=t, k=k, **v) for (n, t, k), v in sorted(results.items())]),
                      f, indent=1)
    return 0


def precision_table(res, variants, peers, ks, threads):
    """towerrt at each precision (user tower + item store) against the fp32 peers."""
    out = ["", "towerrt at each precision (bf16 / int8: user tower and item store quantized, "
           "`towerrt quantize`) against the fp32 peers, in the same run: candidates/s at the median, "
           "p99/p50, and the ratio to each peer's candidates/s at the same thread count.", ""]
    heads = ["vs %s" % n for n in peers]
    out.append("| k | threads | towerrt | p50 ms | p99 ms | p99/p50 | candidates/s | " + " | ".join(heads) + " |")
    out.append("|---:|---:|---|---:|---:|---:|---:|" + "---:|" * len(heads))
    for k in ks:
        for t in threads:
            for v in variants:
                r = res.get((v, t, k))
                if r is None:
                    continue
                cells = []
                for n in peers:
                    q = res.get((n, t, k))
                    cells.append("%.2fx" % (r["cands_per_s_p50"] / q["cands_per_s_p50"]) if q else "-")
                out.append("| %d | %d | %s | %s | %s | %.2f | %.0f | %s |" % (
                    k, t, v, fmt_ms(r["p50_us"]), fmt_ms(r["p99_us"]), r["p99_us"] / r["p50_us"], r["cands_per_s_p50"],
                    " | ".join(cells)))
    return "\n".join(out) + "\n"


def verdict(ratio):
    """Within 2% is a tie on this kind of machine; below, the peer is faster."""
    if ratio < 0.98:
        return " **peer wins**"
    if ratio <= 1.02:
        return " (tie)"
    return ""


def fmt_ms(us):
    return "%.3f" % (us / 1e3) if us < 1e4 else "%.1f" % (us / 1e3)


def table_markdown(res, names, ks, threads, tr_doc, model, versions, a):
    m = tr_doc["machine"]
    src = model.meta.get("general.source", "")
    what = "synthetic reference configuration" if src.startswith("synthetic") else tr_doc["model"]["path"]
    out = []
    out.append("Machine: %s, %d logical CPUs; %s. Model: %s; item store of %d items; FE layers %s. "
               "towerrt: ISA %s, threads per request as in its row." % (
                   m["cpu"], m["logical_cpus"], ", ".join("%s %s" % kv for kv in sorted(versions.items())), what,
                   tr_doc["model"]["items_count"],
                   tr_doc["model"]["trained_fe_layers"] if a.fe == "trained" else a.fe, m["default_isa"]))
    out.append("")
    out.append("candidates/s = k / median latency. ratio = towerrt candidates/s / the peer's, at the median "
               "(> 1: towerrt is faster; < 0.98: the peer is faster, marked **peer wins**; within 2%: tie); "
               "p99 ratio = the peer's p99 / towerrt's. CPU ms = process CPU time per request (all threads); CPU share = CPU time / wall "
               "time: below 1 x threads, other processes had the cores.")
    out.append("")
    out.append("| k | threads | runtime | p50 ms | p99 ms | candidates/s | ratio (p50) | p99 ratio | CPU ms p50 | CPU share |")
    out.append("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")

    def cpu_cells(r):
        c, sh = r.get("cpu_p50_us"), r.get("cpu_share")
        return "%s | %s" % (fmt_ms(c) if c is not None else "-", "%.2f" % sh if sh is not None else "-")

    for k in ks:
        for t in threads:
            tt = t if ("towerrt", t, k) in res else 1
            base = res[("towerrt", tt, k)]
            out.append("| %d | %d | towerrt | %s | %s | %.0f | 1.00x | 1.00x | %s |" % (
                k, tt, fmt_ms(base["p50_us"]), fmt_ms(base["p99_us"]), base["cands_per_s_p50"], cpu_cells(base)))
            for n in names[1:]:
                r = res.get((n, t, k))
                if r is None:
                    continue
                ratio = base["cands_per_s_p50"] / r["cands_per_s_p50"]
                p99 = r["p99_us"] / base["p99_us"]
                out.append("| %d | %d | %s | %s | %s | %.0f | %.2fx%s | %.2fx%s | %s |" % (
                    k, t, n, fmt_ms(r["p50_us"]), fmt_ms(r["p99_us"]), r["cands_per_s_p50"], ratio, verdict(ratio),
                    p99, verdict(p99), cpu_cells(r)))
    out.append("")
    heads = ["%s t=%d" % (n, t) for n in names[1:] for t in threads]
    out.append("Summary, ratio at the median (towerrt / the peer, both at the thread count shown):")
    out.append("")
    out.append("| k | " + " | ".join(heads) + " |")
    out.append("|---:|" + "---:|" * len(heads))
    for k in ks:
        cells = []
        for n in names[1:]:
            for t in threads:
                base = res[("towerrt", t if ("towerrt", t, k) in res else 1, k)]["cands_per_s_p50"]
                r = res.get((n, t, k))
                if r is None:
                    cells.append("-")
                    continue
                ratio = base / r["cands_per_s_p50"]
                cells.append("%.2fx%s" % (ratio, verdict(ratio)))
        out.append("| %d | %s |" % (k, " | ".join(cells)))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
