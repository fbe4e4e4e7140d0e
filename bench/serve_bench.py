"""towerrt serve against in-process scoring, on the same machine and load
(docs/serving.md, "towerrt serve", measured numbers).
usage: serve_bench.py TOWERRT MODEL_DIR OUT_DIR [SECONDS] [ROUNDS]
MODEL_DIR holds model.twr and items.twi of `towerrt bench --synthetic
--workdir MODEL_DIR` (the reference configuration, 100,000 items).
  latency   one closed-loop client, k = 1,000, random users and random
            candidates from the store: in-process (`towerrt bench`, one
            thread) and through HTTP (wrk -t1 -c1 with a pool of 256 JSON
            bodies; server --threads 1), alternated ROUNDS times: medians
            The server also reports the time of its library calls
            (towerrt_score_duration_seconds): the client's mean latency
            minus that mean is the server's overhead on the same requests
            in the same run, which the machine's load cannot skew.
  rps       wrk -t2 -c4, server --threads 1 and 2; in-process 1/p50
  binary    JSON vs binary tensor bodies at k = 1,000 / 10,000 / 100,000
            (Python http.client, one connection, median of the requests),
            on the reference model and on the golden fixture basic_single
            (a toy model: there the protocol is most of the time)
Timings depend on the machine's load: the script prints the load average."""
import csv
import http.client
import json
import os
import random
import re
import statistics
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "serve"))
from serve_util import Server, build_repository  # noqa: E402

USER_VOCAB = [6041, 3, 8, 22]


def item_id(row):  # bench/synthetic_model.c tb_synth_item_id
    return row * 7919 + 1000003


def request(rng, k, catalog=100000):
    uids = [rng.randrange(v) for v in USER_VOCAB]
    dense = [rng.uniform(-1, 1)]
    cand = [item_id(rng.randrange(catalog)) for _ in range(k)]
    return uids, dense, cand


def json_body(uids, dense, cand):
    return json.dumps({"inputs": [
        {"name": "user_ids", "datatype": "INT64", "shape": [1, 4], "data": uids},
        {"name": "user_dense", "datatype": "FP32", "shape": [1, 1], "data": dense},
        {"name": "candidate_ids", "datatype": "UINT64", "shape": [len(cand)], "data": cand}]})


def binary_body(uids, dense, cand, user_width=4):
    head = json.dumps({"inputs": [
        {"name": "user_ids", "datatype": "INT64", "shape": [1, user_width],
         "parameters": {"binary_data_size": 8 * user_width}},
        {"name": "user_dense", "datatype": "FP32", "shape": [1, 1], "parameters": {"binary_data_size": 4}},
        {"name": "candidate_ids", "datatype": "UINT64", "shape": [len(cand)],
         "parameters": {"binary_data_size": 8 * len(cand)}}],
        "outputs": [{"name": "scores", "parameters": {"binary_data": True}}]}).encode()
    raw = struct.pack(f"<{user_width}q", *uids) + struct.pack("<f", dense[0]) + struct.pack(f"<{len(cand)}Q", *cand)
    return head + raw, len(head)


def ms(s):
    v, unit = re.match(r"([\d.]+)(us|ms|s)", s).groups()
    return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit]


def wrk(url, script, threads, conns, seconds):
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s",
                          "-s", script, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit("wrk saw errors:\n" + out)
    p = {m.group(1): ms(m.group(2)) for m in re.finditer(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    avg = ms(re.search(r"Latency\s+(\S+)", out).group(1))
    return p["50"], p["99"], rps, avg


def server_sums(port, model="reference"):
    """(sum, count) of the server's score and infer duration histograms."""
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    v = {}
    for fam in ("score", "infer"):
        for part in ("sum", "count"):
            m = re.search(rf'^towerrt_{fam}_duration_seconds_{part}{{model="{model}"}} (\S+)', text, re.M)
            v[fam, part] = float(m.group(1))
    return v


def inproc(towerrt, mdir, seconds, work):
    path = os.path.join(work, "inproc.csv")
    subprocess.run([towerrt, "bench", "--model", os.path.join(mdir, "model.twr"), "--items",
                    os.path.join(mdir, "items.twi"), "--isa", "best", "--fe", "trained", "--k", "1000",
                    "--threads", "1", "--seconds", str(seconds), "--requests", "100000", "--quiet",
                    "--csv", path], capture_output=True, check=True)
    row = list(csv.DictReader(open(path)))[0]
    return float(row["p50_us"]) / 1e3, float(row["p99_us"]) / 1e3


def main():
    towerrt, mdir, work = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
    seconds = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    os.makedirs(work, exist_ok=True)
    repo = os.path.join(work, "repo", "reference", "1")
    os.makedirs(repo, exist_ok=True)
    for f in ("model.twr", "items.twi"):
        if not os.path.exists(os.path.join(repo, f)):
            os.symlink(os.path.join(mdir, f), os.path.join(repo, f))
    rng = random.Random(42)
    bodies = os.path.join(work, "bodies.txt")
    with open(bodies, "w") as f:
        for _ in range(256):
            f.write(json_body(*request(rng, 1000)) + "\n")
    script = os.path.join(work, "random.lua")
    with open(script, "w") as f:
        f.write(f'local b = {{}}\nfor l in io.lines("{bodies}") do b[#b + 1] = l end\n'
                'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                'request = function() return wrk.format(nil, nil, nil, b[math.random(#b)]) end\n')
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs")
    res = {"inproc_p50": [], "inproc_p99": [], "http_p50": [], "http_p99": [], "http_avg": [],
           "server_score_avg": [], "server_total_avg": [], "rps1": [], "rps2": []}
    srv1 = Server(towerrt, os.path.join(work, "repo"), work, "--threads", "1", tag="bench1")
    url1 = f"http://127.0.0.1:{srv1.port}/v2/models/reference/infer"
    for r in range(rounds):
        p50, p99 = inproc(towerrt, mdir, seconds, work)
        res["inproc_p50"].append(p50), res["inproc_p99"].append(p99)
        before = server_sums(srv1.port)
        p50, p99, _, avg = wrk(url1, script, 1, 1, seconds)
        after = server_sums(srv1.port)
        n = after["score", "count"] - before["score", "count"]
        score_avg = (after["score", "sum"] - before["score", "sum"]) / n * 1e3
        total_avg = (after["infer", "sum"] - before["infer", "sum"]) / n * 1e3
        res["http_p50"].append(p50), res["http_p99"].append(p99), res["http_avg"].append(avg)
        res["server_score_avg"].append(score_avg), res["server_total_avg"].append(total_avg)
        print(f"round {r}: in-process p50 {res['inproc_p50'][-1]:.2f} p99 {res['inproc_p99'][-1]:.2f} ms | "
              f"HTTP p50 {p50:.2f} p99 {p99:.2f} mean {avg:.3f} ms; in the server: library calls {score_avg:.3f}, "
              f"arrival to response {total_avg:.3f} ms (mean of {int(n)})", flush=True)
    srv2 = Server(towerrt, os.path.join(work, "repo"), work, "--threads", "2", tag="bench2")
    url2 = f"http://127.0.0.1:{srv2.port}/v2/models/reference/infer"
    for r in range(rounds):
        res["rps1"].append(wrk(url1, script, 2, 4, seconds)[2])
        res["rps2"].append(wrk(url2, script, 2, 4, seconds)[2])
        res.setdefault("inproc_rps1", []).append(1e3 / inproc(towerrt, mdir, seconds, work)[0])
        print(f"round {r}: requests/s, 1 worker {res['rps1'][-1]:.1f}, 2 workers {res['rps2'][-1]:.1f}", flush=True)
    srv2.stop()
    med = {k: statistics.median(v) for k, v in res.items()}
    print("\nmedians over rounds:")
    for k, v in med.items():
        print(f"  {k:12s} {v:.3f}")
    print(f"  HTTP p50 - in-process p50 (separate runs): {med['http_p50'] - med['inproc_p50']:.3f} ms "
          f"({100 * (med['http_p50'] / med['inproc_p50'] - 1):.1f}% of in-process p50)")
    print(f"  same requests, same run: client mean {med['http_avg']:.3f} ms - library calls mean "
          f"{med['server_score_avg']:.3f} ms = {med['http_avg'] - med['server_score_avg']:.3f} ms "
          f"({100 * (med['http_avg'] / med['server_score_avg'] - 1):.1f}%)")
    binary_vs_json(srv1.port, "reference", lambda k: request(rng, k))
    srv1.stop()
    repo, oracle = build_repository(towerrt, os.path.join(work, "toy"), ["basic_single"])
    uids, dense, cand = oracle["basic_single"][0][4]
    toy = Server(towerrt, repo, work, "--threads", "1", tag="toy")
    dense = [float(x) for x in dense]
    binary_vs_json(toy.port, "basic_single", lambda k: (uids, dense, [cand[i % len(cand)] for i in range(k)]),
                   user_width=len(uids))
    toy.stop()


def binary_vs_json(port, model, make, user_width=4):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    print(f"\nJSON vs binary tensors, model {model} (server --threads 1, median ms of a round trip, "
          "bodies built beforehand, responses read but not parsed):")
    for k in (1000, 10000, 100000):
        q = make(k)
        jb = json_body(*q).replace('"shape": [1, 4]', f'"shape": [1, {user_width}]').encode()
        bb, hl = binary_body(*q, user_width=user_width)
        times = {"json": [], "binary": []}
        n = 30 if k < 100000 else 9
        for _ in range(n):
            for kind, body, hdr in (("json", jb, {}), ("binary", bb, {"Inference-Header-Content-Length": str(hl)})):
                t0 = time.perf_counter()
                conn.request("POST", f"/v2/models/{model}/infer", body=body, headers=hdr)
                r = conn.getresponse()
                r.read()
                times[kind].append((time.perf_counter() - t0) * 1e3)
                assert r.status == 200, r.status
        j, b = statistics.median(times["json"]), statistics.median(times["binary"])
        print(f"  k={k:6d}: JSON {j:8.2f} ms ({len(jb)} B), binary {b:8.2f} ms ({len(bb)} B), "
              f"JSON/binary {j / b:.2f}", flush=True)
    conn.close()


if __name__ == "__main__":
    main()
