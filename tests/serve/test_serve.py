"""towerrt serve end to end on loopback (ctest serve_*).
usage: test_serve.py TOWERRT WORK_DIR golden|errors|metrics|reload|drain
Each part starts its own server on an ephemeral port and stops it with
SIGTERM, which must exit 0 (under ASan a leak makes that exit non-zero)."""
import json
import os
import shutil
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import (GOLDEN, Server, binary_body, build_repository, check, f32, fixtures, infer_body,  # noqa: E402
                        top_oracle)


def finish(srv):
    rc = srv.stop()
    check(rc == 0, f"server exited {rc} after SIGTERM:\n{srv.logtext()[-3000:]}")


def part_golden(towerrt, work):
    """Every request of every golden fixture through HTTP (JSON, JSON with
    INT64 ids, binary tensors, top-n) equals the library's scores bit for bit."""
    repo, oracle = build_repository(towerrt, work)
    srv = Server(towerrt, repo, work, "--threads", "2")
    st, _ = srv.json("GET", "/v2/health/live")
    check(st == 200, f"live: {st}")
    st, _ = srv.json("GET", "/v2/health/ready")
    check(st == 200, f"ready: {st}")
    st, meta = srv.json("GET", "/v2")
    check(st == 200 and meta["name"] == "towerrt" and "binary_tensor_data" in meta["extensions"], f"/v2: {meta}")
    conn = srv.conn()
    n_req = 0
    for name, (reqs, scores) in oracle.items():
        st, meta = srv.json("GET", f"/v2/models/{name}")
        check(st == 200 and meta["name"] == name and meta["versions"] == ["1"], f"metadata {name}: {meta}")
        check([i["name"] for i in meta["inputs"]][0] == "user_ids", meta)
        st, _ = srv.json("GET", f"/v2/models/{name}/versions/1")
        check(st == 200, f"{name} versions/1: {st}")
        st, _ = srv.json("GET", f"/v2/models/{name}/ready")
        check(st == 200, f"{name} ready: {st}")
        for q, ((uids, dense, cand), want) in enumerate(zip(reqs, scores)):
            where = f"{name} request {q}"
            st, r = srv.json("POST", f"/v2/models/{name}/infer", infer_body(uids, dense, cand), conn=conn)
            check(st == 200, f"{where}: {st} {r}")
            out = r["outputs"][0]
            check(out["name"] == "scores" and out["datatype"] == "FP32" and out["shape"] == [len(cand)], f"{where}: {out}")
            got = out["data"]
            check([f32(x) for x in got] == [f32(x) for x in want], f"{where}: scores {got} != library {want}")
            check(r["model_version"] == "1" and r["id"] == "t", f"{where}: {r}")
            # INT64 candidate ids: the same 64 bits
            signed = [c - (1 << 64) if c >= 1 << 63 else c for c in cand]
            st, r = srv.json("POST", f"/v2/models/{name}/infer", infer_body(uids, dense, signed, cand_type="INT64"), conn=conn)
            check(st == 200 and [f32(x) for x in r["outputs"][0]["data"]] == [f32(x) for x in want], f"{where} INT64: {r}")
            # binary tensor data in and out
            body, hlen = binary_body(uids, dense, cand)
            st, h, data = srv.request("POST", f"/v2/models/{name}/infer", body,
                                      {"Inference-Header-Content-Length": str(hlen)}, conn=conn)
            check(st == 200, f"{where} binary: {st} {data[:300]}")
            jl = int(h["inference-header-content-length"])
            head = json.loads(data[:jl])
            check(head["outputs"][0]["parameters"]["binary_data_size"] == 4 * len(cand), head)
            check(data[jl:] == b"".join(f32(x) for x in want), f"{where} binary scores differ")
            # top-n: ranked as the library's scores sorted by (score desc, id asc)
            n = min(3, len(cand) + 1)
            st, r = srv.json("POST", f"/v2/models/{name}/infer", infer_body(uids, dense, cand, top_n=n), conn=conn)
            check(st == 200, f"{where} top_n: {st} {r}")
            outs = {o["name"]: o for o in r["outputs"]}
            exp = top_oracle(want, cand, n)
            check(outs["top_ids"]["data"] == [i for i, _ in exp], f"{where} top ids {outs['top_ids']} != {exp}")
            check([f32(x) for x in outs["top_scores"]["data"]] == [f32(s) for _, s in exp], f"{where} top scores")
            n_req += 1
    conn.close()
    print(f"golden: {n_req} requests x 4 ways over {len(oracle)} fixtures equal the library bit for bit")
    finish(srv)


def expect_error(srv, path, body, code, needle, headers=None, method="POST"):
    st, h, data = srv.request(method, path, body if isinstance(body, (bytes, str)) or body is None else json.dumps(body),
                              headers or {"Content-Type": "application/json"})
    check(st == code, f"{path}: HTTP {st}, expected {code}: {data[:300]}")
    err = json.loads(data)["error"]
    check(needle in err, f"{path}: error '{err}' does not name '{needle}'")
    return err


def slow_client(srv, seconds):
    """A client that sends half a request and stalls: the server closes it
    after --connection-timeout while other requests are answered."""
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /v2/models/basic_single/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inp")
    t0 = time.time()
    s.settimeout(seconds + 10)
    try:
        data = s.recv(1000)
    except (ConnectionResetError, socket.timeout):
        data = b""
    closed_after = time.time() - t0
    s.close()
    return data, closed_after


def usage_errors(towerrt, repo):
    """The command line: --help, a missing repository, bad values, unknown options."""
    import subprocess
    def run(*args):
        return subprocess.run([towerrt, "serve", *args], capture_output=True, text=True, timeout=60)
    r = run("--help")
    check(r.returncode == 0 and "--model-repository" in r.stdout, f"--help: {r.returncode}")
    for args, needle in ((("--http-port", "0"), "--model-repository"),
                         (("--model-repository", repo, "--http-port", "70000"), "--http-port"),
                         (("--model-repository", repo, "--threads", "x"), "--threads"),
                         (("--model-repository", repo, "--log-format", "xml"), "--log-format"),
                         (("--model-repository", repo, "--frobnicate"), "--frobnicate"),
                         (("--model-repository", repo, "extra"), "extra")):
        r = run(*args)
        check(r.returncode == 2 and needle in r.stderr, f"{args}: exit {r.returncode}, stderr {r.stderr!r}")
    r = run("--model-repository", repo + "/missing", "--http-port", "0")
    check(r.returncode == 1 and "missing" in r.stderr, f"missing repository: exit {r.returncode} {r.stderr!r}")


def part_errors(towerrt, work):
    repo, oracle = build_repository(towerrt, work, ["basic_single"])
    usage_errors(towerrt, repo)
    (uids, dense, cand), want = oracle["basic_single"][0][2], oracle["basic_single"][1][2]
    srv = Server(towerrt, repo, work, "--threads", "1", "--max-k", "8", "--max-topn", "4", "--max-body", "65536",
                 "--connection-timeout", "2")
    m = "/v2/models/basic_single/infer"
    good = infer_body(uids, dense, cand)
    expect_error(srv, m, '{"inputs": [', 400, "TOWERRT_ERR_FORMAT")
    expect_error(srv, m, '{"inputs": []} x', 400, "TOWERRT_ERR_FORMAT")
    expect_error(srv, m, "[1, 2]", 400, "TOWERRT_ERR_FORMAT")
    expect_error(srv, m, {"inputs": 3}, 400, "TOWERRT_ERR_INVALID_ARGUMENT")
    expect_error(srv, m, {"inputs": good["inputs"][:1]}, 400, "TOWERRT_ERR_INVALID_ARGUMENT")
    bad = json.loads(json.dumps(good))
    bad["inputs"][0]["data"] = uids[:-1]
    expect_error(srv, m, bad, 400, "TOWERRT_ERR_SHAPE")           # data vs shape
    bad["inputs"][0]["shape"] = [1, len(uids) - 1]
    expect_error(srv, m, bad, 400, "user id slots")                # shape vs model
    bad = json.loads(json.dumps(good))
    bad["inputs"][0]["datatype"] = "FP32"
    expect_error(srv, m, bad, 400, "TOWERRT_ERR_SHAPE")            # datatype
    bad = json.loads(json.dumps(good))
    bad["inputs"][0]["shape"] = [2, len(uids)]
    expect_error(srv, m, bad, 400, "TOWERRT_ERR_SHAPE")            # two users
    bad = json.loads(json.dumps(good))
    bad["inputs"][2]["data"] = [1.5] * len(cand)
    expect_error(srv, m, bad, 400, "TOWERRT_ERR_SHAPE")            # a float id
    bad = json.loads(json.dumps(good))
    bad["inputs"].append({"name": "extra", "datatype": "INT64", "shape": [1], "data": [1]})
    expect_error(srv, m, bad, 400, "unknown input")
    expect_error(srv, m, infer_body(uids, dense, [12345]), 400, "TOWERRT_ERR_UNKNOWN_ITEM")
    expect_error(srv, m, infer_body([10 ** 9] + uids[1:], dense, cand), 400, "TOWERRT_ERR_ID_OUT_OF_RANGE")
    expect_error(srv, m, infer_body(uids, dense, []), 400, "TOWERRT_ERR_EMPTY_REQUEST")
    expect_error(srv, m, infer_body(uids, dense, cand * 9), 400, "TOWERRT_ERR_LIMIT")   # k above --max-k 8
    expect_error(srv, m, infer_body(uids, dense, cand, top_n=5), 400, "TOWERRT_ERR_LIMIT")  # top_n above 4
    bad = infer_body(uids, dense, cand)
    bad["parameters"] = {"top_n": 0}
    expect_error(srv, m, bad, 400, "top_n")
    expect_error(srv, m, b"x" * 70000, 413, "TOWERRT_ERR_LIMIT")  # body above --max-body
    expect_error(srv, "/v2/models/nope/infer", good, 404, "nope")
    expect_error(srv, "/v2/models/basic_single/versions/7/infer", good, 404, "version 7")
    expect_error(srv, "/v2/models/nope", None, 404, "nope", method="GET")
    expect_error(srv, m, None, 405, "POST", method="GET")
    expect_error(srv, "/v2/nothing", None, 404, "unknown endpoint", method="GET")
    expect_error(srv, "/v2/repository/models/basic_single/load", "", 403, "--enable-admin")
    body, hlen = binary_body(uids, dense, cand)
    expect_error(srv, m, body[:-8], 400, "TOWERRT_ERR_SHAPE", {"Inference-Header-Content-Length": str(hlen)})
    expect_error(srv, m, body, 400, "Inference-Header-Content-Length", {"Inference-Header-Content-Length": "999999"})
    # a slow client is dropped after the connection timeout; others are served meanwhile
    result = {}
    t = threading.Thread(target=lambda: result.update(zip(("data", "after"), slow_client(srv, 2))))
    t.start()
    time.sleep(0.3)
    for _ in range(5):
        st, r = srv.json("POST", m, good)
        check(st == 200 and [f32(x) for x in r["outputs"][0]["data"]] == [f32(x) for x in want], f"during slow client: {st}")
    t.join()
    check(result["after"] < 10, f"slow client held its connection {result['after']:.1f}s (timeout 2s)")
    print(f"slow client: closed after {result['after']:.1f}s (--connection-timeout 2), other requests served")
    finish(srv)
    part_overload(towerrt, work, repo, uids, dense)


def part_overload(towerrt, work, repo, uids, dense):
    """Backpressure: one worker, a queue of 1, many large requests at once:
    503 at once past the queue (OVERLOADED) or past the request timeout
    (TIMEOUT); every other request succeeds."""
    srv = Server(towerrt, repo, work, "--threads", "1", "--queue", "1", "--request-timeout-ms", "20000", tag="overload")
    reqs = oracle_ids = [0, 18446744073709551615]
    cand = reqs * 50000  # k = 100,000: a few ms of JSON each
    body = json.dumps(infer_body(uids, dense, cand))
    codes, errors = [], []
    lock = threading.Lock()

    def one():
        st, _, data = srv.request("POST", "/v2/models/basic_single/infer", body)
        with lock:
            codes.append(st)
            if st != 200:
                errors.append(json.loads(data)["error"])

    ts = [threading.Thread(target=one) for _ in range(12)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    check(set(codes) <= {200, 503} and codes.count(503) >= 1, f"codes {codes}")
    check(all("overloaded" in e for e in errors), errors)
    print(f"overload: {codes.count(200)} answered, {codes.count(503)} refused with 503 at once (queue 1)")
    del oracle_ids
    finish(srv)
    # per-request timeout: requests still queued past 1 ms fail with 503 unscored
    srv = Server(towerrt, repo, work, "--threads", "1", "--queue", "64", "--request-timeout-ms", "1", tag="timeout")
    codes.clear(), errors.clear()
    ts = [threading.Thread(target=one) for _ in range(6)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    check(set(codes) <= {200, 503} and codes.count(503) >= 1, f"codes {codes}")
    check(all("timeout" in e for e in errors), errors)
    _, _, text = srv.request("GET", "/metrics")
    check(f'towerrt_infer_failures_total{{model="basic_single",status="TIMEOUT"}} {codes.count(503)}' in text.decode(),
          "timeout metric")
    print(f"timeout: {codes.count(503)} of 6 timed out in the queue (--request-timeout-ms 1)")
    finish(srv)


def part_metrics(towerrt, work):
    """The /metrics exposition parsed by prometheus_client: counts match
    the requests sent."""
    from prometheus_client.parser import text_string_to_metric_families
    repo, oracle = build_repository(towerrt, work, ["basic_single", "multi_id"])
    srv = Server(towerrt, repo, work, "--threads", "2")
    sent = {"basic_single": 0, "multi_id": 0}
    cands = {"basic_single": 0, "multi_id": 0}
    for name, (reqs, _) in oracle.items():
        for uids, dense, cand in reqs:
            st, _ = srv.json("POST", f"/v2/models/{name}/infer", infer_body(uids, dense, cand))
            check(st == 200, st)
            sent[name] += 1
            cands[name] += len(cand)
    uids, dense, cand = oracle["basic_single"][0][0]
    for _ in range(3):
        srv.json("POST", "/v2/models/basic_single/infer", infer_body(uids, dense, [424242]))
    srv.json("POST", "/v2/models/basic_single/infer", "{")
    st, h, text = srv.request("GET", "/metrics")
    check(st == 200 and h["content-type"].startswith("text/plain"), f"/metrics: {st} {h}")
    fam = {f.name: f for f in text_string_to_metric_families(text.decode())}

    def sample(family, suffix="", **labels):
        for s in fam[family].samples:
            if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        raise AssertionError(f"no sample {family}{suffix} {labels}")

    for name in sent:
        ok = sample("towerrt_infer_requests", "_total", model=name, outcome="success")
        check(ok == sent[name], f"{name}: {ok} successes counted, {sent[name]} sent")
        check(sample("towerrt_candidates_scored", "_total", model=name) == cands[name], "candidates")
        check(sample("towerrt_model_loaded_version", model=name) == 1, "loaded version")
        check(sample("towerrt_model_loads", "_total", model=name) == 1, "loads")
        check(sample("towerrt_model_load_failures", "_total", model=name) == 0, "load failures")
    check(sample("towerrt_infer_failures", "_total", model="basic_single", status="TOWERRT_ERR_UNKNOWN_ITEM") == 3, "unknown")
    check(sample("towerrt_infer_failures", "_total", model="basic_single", status="BAD_REQUEST") == 1, "bad request")
    count = sample("towerrt_infer_duration_seconds", "_count", model="basic_single")
    inf = sample("towerrt_infer_duration_seconds", "_bucket", model="basic_single", le="+Inf")
    check(count == inf == sent["basic_single"] + 4, f"histogram count {count}, +Inf {inf}")
    check(fam["towerrt_infer_duration_seconds"].type == "histogram", "histogram type")
    scored = sample("towerrt_score_duration_seconds", "_count", model="basic_single")
    check(scored == sent["basic_single"], f"score histogram counts {scored} successes, {sent['basic_single']} sent")
    check(sample("towerrt_queue_depth") == 0 and sample("towerrt_requests_in_flight") == 0, "gauges")
    check(sample("towerrt_http_responses", "_total", code="200") >= sum(sent.values()), "http 200s")
    print(f"metrics: {len(fam)} families parsed by prometheus_client; counts match {sum(sent.values())} requests")
    finish(srv)


def wait_for(pred, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def served_version(srv, name):
    st, meta = srv.json("GET", f"/v2/models/{name}")
    return meta["versions"][0] if st == 200 else None


def part_reload(towerrt, work):
    """A new version folder (poll), a broken one (kept serving, reported),
    POST .../load, unload, and SIGHUP with polling off."""
    repo, oracle = build_repository(towerrt, work, ["basic_single"])
    (uids, dense, cand), want = oracle["basic_single"][0][0], oracle["basic_single"][1][0]
    body = infer_body(uids, dense, cand)
    vdir = os.path.join(repo, "basic_single")
    srv = Server(towerrt, repo, work, "--threads", "2", "--poll-ms", "100", "--enable-admin")

    def add_version(v, broken=False):
        tmp = os.path.join(vdir, f".tmp{v}")
        shutil.copytree(os.path.join(vdir, "1"), tmp)
        if broken:
            with open(os.path.join(tmp, "items.twi"), "r+b") as f:
                f.truncate(100)
        os.rename(tmp, os.path.join(vdir, str(v)))  # appears whole

    add_version(2)
    wait_for(lambda: served_version(srv, "basic_single") == "2", "version 2")
    st, r = srv.json("POST", "/v2/models/basic_single/infer", body)
    check(st == 200 and r["model_version"] == "2", r)
    add_version(3, broken=True)
    def reported():
        st, idx = srv.json("POST", "/v2/repository/index")
        return any(e.get("version") == "3" and e["state"] == "UNAVAILABLE" for e in idx)
    wait_for(reported, "the failed version 3 in the index")
    st, idx = srv.json("GET", "/v2/repository/index")
    bad = [e for e in idx if e.get("version") == "3"][0]
    check("TOWERRT_ERR_TRUNCATED" in bad["reason"], bad)
    check(served_version(srv, "basic_single") == "2", "version 2 must keep serving")
    st, r = srv.json("POST", "/v2/models/basic_single/infer", body)
    check(st == 200 and r["model_version"] == "2" and [f32(x) for x in r["outputs"][0]["data"]] == [f32(x) for x in want], r)
    st, _, text = srv.request("GET", "/metrics")
    check('towerrt_model_load_failures_total{model="basic_single"} 1' in text.decode(), "load failure metric")
    check("model_load_failed" in srv.logtext(), "load failure logged")
    st, err = srv.json("POST", "/v2/repository/models/basic_single/load")
    check(st == 400 and "TOWERRT_ERR_TRUNCATED" in err["error"], f"admin load of the broken version: {st} {err}")
    shutil.rmtree(os.path.join(vdir, "3"))
    st, _ = srv.json("POST", "/v2/repository/models/basic_single/load")
    check(st == 200 and served_version(srv, "basic_single") == "2", "admin load")
    st, _ = srv.json("POST", "/v2/repository/models/basic_single/unload")
    check(st == 200, "unload")
    st, _ = srv.json("GET", "/v2/models/basic_single/ready")
    check(st == 503, f"unloaded model ready: {st}")
    st, err = srv.json("POST", "/v2/models/basic_single/infer", body)
    check(st == 503, f"infer on an unloaded model: {st}")
    st, _ = srv.json("POST", "/v2/repository/models/basic_single/load")
    check(st == 200 and served_version(srv, "basic_single") == "2", "load after unload")
    # config.json is read at each load: limits and the trusted load level
    with open(os.path.join(vdir, "config.json"), "w") as f:
        json.dump({"max_k": 4, "max_topn": 2, "items_verify": "structure"}, f)
    st, _ = srv.json("POST", "/v2/repository/models/basic_single/load")
    st, meta = srv.json("GET", "/v2/models/basic_single")
    check(meta["parameters"]["max_k"] == 4 and meta["parameters"]["max_topn"] == 2, meta)
    expect_error(srv, "/v2/models/basic_single/infer", infer_body(uids, dense, [cand[0]] * 5), 400, "TOWERRT_ERR_LIMIT")
    with open(os.path.join(vdir, "config.json"), "w") as f:
        f.write('{"max_k": 4, "colour": 1}')
    st, err = srv.json("POST", "/v2/repository/models/basic_single/load")
    check(st == 400 and "colour" in err["error"], f"bad config.json: {st} {err}")
    check(served_version(srv, "basic_single") == "2", "a bad config.json keeps the old version serving")
    os.remove(os.path.join(vdir, "config.json"))
    st, err = srv.json("POST", "/v2/repository/models/no_such_model/load")
    check(st == 400 and "no model folder" in err["error"], f"load of a missing model: {st} {err}")
    st, _ = srv.json("GET", "/v2/health/ready")
    check(st == 200, f"ready after a failed admin load of a missing model: {st}")
    finish(srv)
    # SIGHUP: polling off, the new version appears only after the signal
    srv = Server(towerrt, repo, work, "--threads", "1", "--poll-ms", "0", tag="sighup")
    add_version(4)
    time.sleep(0.3)
    check(served_version(srv, "basic_single") == "2", "no poll: still version 2")
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: served_version(srv, "basic_single") == "4", "version 4 after SIGHUP")
    print("reload: poll, broken version kept out and reported, admin load/unload, SIGHUP")
    finish(srv)


def part_drain(towerrt, work):
    """SIGTERM with requests queued and in flight: each is answered (200,
    full scores), then the server exits 0 and the port is closed."""
    repo, oracle = build_repository(towerrt, work, ["basic_single"])
    (uids, dense, _), _ = oracle["basic_single"][0][0], None
    cand = [0, 18446744073709551615] * 50000
    body = json.dumps(infer_body(uids, dense, cand))
    srv = Server(towerrt, repo, work, "--threads", "1", "--queue", "64")
    results = []
    lock = threading.Lock()

    def one():
        st, _, data = srv.request("POST", "/v2/models/basic_single/infer", body)
        with lock:
            results.append((st, len(json.loads(data)["outputs"][0]["data"]) if st == 200 else data))

    ts = [threading.Thread(target=one) for _ in range(6)]
    [t.start() for t in ts]
    def accepted():
        # On a loaded machine the first requests can finish before the last
        # is sent: wait until all 6 are in flight or answered, one at least
        # still in flight, so that SIGTERM always meets work to drain.
        st, _, text = srv.request("GET", "/metrics")
        line = [l for l in text.decode().splitlines() if l.startswith("towerrt_requests_in_flight ")][0]
        in_flight = float(line.split()[1])
        with lock:
            answered = len(results)
        return in_flight >= 1 and in_flight + answered >= 6
    wait_for(accepted, "6 requests in flight or answered, one still in flight", timeout=60)
    rc = srv.stop()
    [t.join() for t in ts]
    check(rc == 0, f"exit {rc} after SIGTERM")
    check(results == [(200, len(cand))] * 6, f"drained requests: {[r[0] for r in results]}")
    log = srv.logtext()
    check("draining" in log and "stopped" in log and "stopped_undrained" not in log, log[-2000:])
    try:
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
        raise AssertionError("the port still accepts connections after exit")
    except ConnectionRefusedError:
        pass
    print("drain: 6 requests in flight at SIGTERM all answered 200, exit 0")


def main():
    towerrt, work, part = sys.argv[1], sys.argv[2], sys.argv[3]
    work = os.path.join(work, part)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    {"golden": part_golden, "errors": part_errors, "metrics": part_metrics, "reload": part_reload,
     "drain": part_drain}[part](towerrt, work)
    print(f"serve {part}: passed")


if __name__ == "__main__":
    main()
