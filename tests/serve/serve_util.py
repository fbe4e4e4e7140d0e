"""Shared pieces of the towerrt serve tests: a model repository built from
the golden fixtures, the library's own scores as the oracle (`towerrt
score`), a server on an ephemeral loopback port, and small HTTP helpers.
Standard library only (prometheus_client where the metrics are parsed)."""
import atexit
import http.client
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "tests", "fixtures", "golden")


def f32(x):
    """The float32 a decimal string or float denotes, as its 4 bytes."""
    return struct.pack("<f", float(x))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def fixtures():
    return sorted(d for d in os.listdir(GOLDEN) if os.path.exists(os.path.join(GOLDEN, d, "model.twr")))


def read_requests(path):
    """towerrt-requests by id: [(user_ids, user_dense, candidate_ids)]."""
    out, user, cand = [], None, []
    for line in open(path):
        w = line.split()
        if not w or w[0].startswith("#") or w[0] == "towerrt-requests":
            continue
        if w[0] == "user":
            ids, dense, seen = [], [], False
            for t in w[1:]:
                if t == ";":
                    seen = True
                elif seen:
                    dense.append(t)
                else:
                    ids.append(int(t))
            user = (ids, dense)
        elif w[0] == "items":  # several lines add up to one request's candidates
            cand.extend(int(t) for t in w[1:])
        elif w[0] == "end":
            out.append((user[0], user[1], cand))
        if w[0] == "user":
            cand = []
    return out


def build_repository(towerrt, work, names=None, version=1):
    """REPO/NAME/VERSION/{model.twr, items.twi} for the golden fixtures, and
    the library's scores of every request: {name: (requests, [scores strings])}."""
    repo = os.path.join(work, "repo")
    oracle = {}
    for name in names or fixtures():
        src = os.path.join(GOLDEN, name)
        vdir = os.path.join(repo, name, str(version))
        os.makedirs(vdir, exist_ok=True)
        shutil.copy(os.path.join(src, "model.twr"), vdir)
        items = os.path.join(vdir, "items.twi")
        subprocess.run([towerrt, "build-items", "--model", os.path.join(vdir, "model.twr"), "--features",
                        os.path.join(src, "items.txt"), "--out", items], check=True, capture_output=True)
        out = os.path.join(work, name + ".scores")
        subprocess.run([towerrt, "score", "--model", os.path.join(vdir, "model.twr"), "--items", items,
                        "--requests", os.path.join(src, "requests_ids.txt"), "--out", out], check=True,
                       capture_output=True)
        reqs = read_requests(os.path.join(src, "requests_ids.txt"))
        scores = [l.split() for l in open(out)]
        check(len(reqs) == len(scores), f"{name}: {len(reqs)} requests, {len(scores)} score lines")
        oracle[name] = (reqs, scores)
    return repo, oracle


class Server:
    """towerrt serve on 127.0.0.1, an ephemeral port read from --port-file."""

    def __init__(self, towerrt, repo, work, *args, tag="server"):
        self.port_file = os.path.join(work, tag + ".port")
        self.log_path = os.path.join(work, tag + ".log")
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        self.log = open(self.log_path, "w")
        cmd = [towerrt, "serve", "--model-repository", repo, "--http-port", "0", "--port-file", self.port_file,
               *args]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        atexit.register(self._kill)  # a failing test leaves no server behind
        deadline = time.time() + 60
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"server did not start: {self.logtext()}")
            time.sleep(0.02)
        self.port = int(open(self.port_file).read())

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logtext(self):
        if not self.log.closed:
            self.log.flush()
        return open(self.log_path).read()

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        c = conn or self.conn()
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if conn is None:
            c.close()
        return r.status, hdrs, data

    def json(self, method, path, obj=None, **kw):
        body = None if obj is None else (obj if isinstance(obj, (bytes, str)) else json.dumps(obj))
        st, h, data = self.request(method, path, body, {"Content-Type": "application/json"}, **kw)
        return st, (json.loads(data) if data else None)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the server; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"server did not exit within {timeout}s after signal {sig}")
        self.log.close()
        return rc


def infer_body(user_ids, user_dense, cand, top_n=None, cand_type="UINT64"):
    inputs = [{"name": "user_ids", "datatype": "INT64", "shape": [1, len(user_ids)], "data": user_ids}]
    if user_dense:
        inputs.append({"name": "user_dense", "datatype": "FP32", "shape": [1, len(user_dense)],
                       "data": [float(x) for x in user_dense]})
    inputs.append({"name": "candidate_ids", "datatype": cand_type, "shape": [len(cand)], "data": cand})
    body = {"id": "t", "inputs": inputs}
    if top_n:
        body["parameters"] = {"top_n": top_n}
    return body


def binary_body(user_ids, user_dense, cand):
    """The same request with the binary tensor data extension (as
    tritonclient sends it): JSON header, then the raw tensors."""
    raw = [struct.pack(f"<{len(user_ids)}q", *user_ids)]
    inputs = [{"name": "user_ids", "datatype": "INT64", "shape": [1, len(user_ids)],
               "parameters": {"binary_data_size": 8 * len(user_ids)}}]
    if user_dense:
        raw.append(b"".join(f32(x) for x in user_dense))
        inputs.append({"name": "user_dense", "datatype": "FP32", "shape": [1, len(user_dense)],
                       "parameters": {"binary_data_size": 4 * len(user_dense)}})
    raw.append(struct.pack(f"<{len(cand)}Q", *cand))
    inputs.append({"name": "candidate_ids", "datatype": "UINT64", "shape": [len(cand)],
                   "parameters": {"binary_data_size": 8 * len(cand)}})
    header = json.dumps({"inputs": inputs, "outputs": [{"name": "scores", "parameters": {"binary_data": True}}]})
    return header.encode() + b"".join(raw), len(header.encode())


def top_oracle(scores, cand, n):
    """The first n of the candidates by (score desc, id asc, position asc)."""
    order = sorted(range(len(cand)), key=lambda i: (-struct.unpack("<f", f32(scores[i]))[0], cand[i], i))
    return [(cand[i], scores[i]) for i in order[:n]]
