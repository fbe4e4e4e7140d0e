"""towerrt serve under load with a live reload in the middle (ctest
serve_load): wrk (Debian) posts an infer request from 8 connections for a
fixed time; a new version folder appears mid-run and the poller switches
to it. Passes when wrk saw no socket error and no non-2xx response, the
server counted no failure, the new version serves afterwards, and SIGTERM
exits 0 (in the ASan build LeakSanitizer makes a leak a non-zero exit).
usage: test_load.py TOWERRT WORK_DIR [SECONDS]"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import Server, build_repository, check, f32, infer_body  # noqa: E402


def main():
    towerrt, work = sys.argv[1], os.path.join(sys.argv[2], "load")
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    wrk = shutil.which("wrk")
    check(wrk is not None, "wrk not found (tools/install_deps.sh installs it)")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    repo, oracle = build_repository(towerrt, work, ["basic_single"])
    (uids, dense, cand), want = oracle["basic_single"][0][4], oracle["basic_single"][1][4]
    body_path = os.path.join(work, "body.json")
    with open(body_path, "w") as f:
        json.dump(infer_body(uids, dense, cand), f)
    script = os.path.join(work, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n'
                f'local f = assert(io.open("{body_path}", "rb"))\n'
                'wrk.body = f:read("*a")\nf:close()\n'
                'wrk.headers["Content-Type"] = "application/json"\n')
    srv = Server(towerrt, repo, work, "--threads", "2", "--poll-ms", "100", "--queue", "64")
    url = f"http://127.0.0.1:{srv.port}/v2/models/basic_single/infer"
    t0 = time.time()
    run = subprocess.Popen([wrk, "-t2", "-c8", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", script, url],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(seconds / 2)
    vdir = os.path.join(repo, "basic_single")
    shutil.copytree(os.path.join(vdir, "1"), os.path.join(vdir, ".new"))
    os.rename(os.path.join(vdir, ".new"), os.path.join(vdir, "2"))  # appears whole
    reload_at = time.time() - t0
    out, _ = run.communicate(timeout=seconds + 60)
    print(out)
    check(run.returncode == 0, f"wrk exited {run.returncode}")
    m = re.search(r"(\d+) requests in", out)
    check(m and int(m.group(1)) > 0, "wrk completed no request")
    n = int(m.group(1))
    check("Non-2xx" not in out, "wrk saw non-2xx responses")
    check("Socket errors" not in out, "wrk saw socket errors")
    st, r = srv.json("POST", "/v2/models/basic_single/infer", infer_body(uids, dense, cand))
    check(st == 200 and r["model_version"] == "2", f"after the reload: {st} {r}")
    check([f32(x) for x in r["outputs"][0]["data"]] == [f32(x) for x in want], "scores after the reload")
    _, _, text = srv.request("GET", "/metrics")
    text = text.decode()
    fails = sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("towerrt_infer_failures_total{"))
    ok = [float(l.split()[-1]) for l in text.splitlines()
          if l.startswith('towerrt_infer_requests_total{model="basic_single",outcome="success"}')][0]
    check(fails == 0, f"the server counted {fails} failed requests")
    check(ok >= n, f"server successes {ok} < wrk's {n}")
    log = srv.logtext()
    check("version=2" in log and "model_loaded" in log, "the reload is not in the log")
    rc = srv.stop()
    check(rc == 0, f"server exited {rc} after SIGTERM (a leak under ASan?):\n{srv.logtext()[-4000:]}")
    print(f"load: {n} requests from wrk in {seconds}s, version 2 switched in at {reload_at:.1f}s, "
          f"0 failures, SIGTERM exit 0")
    print("serve load: passed")


if __name__ == "__main__":
    main()
