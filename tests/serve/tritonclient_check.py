"""A client no one here wrote, unchanged: tritonclient.http (PyPI) scores
every request of a golden fixture through towerrt serve, with its default
binary tensors and with JSON, and gets the library's scores bit for bit.
usage (venv python): tritonclient_check.py TOWERRT WORK_DIR"""
import os
import sys

import numpy as np
import tritonclient.http as httpclient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_util import Server, build_repository, check  # noqa: E402


def main():
    towerrt, work = sys.argv[1], os.path.join(sys.argv[2], "tritonclient")
    os.makedirs(work, exist_ok=True)
    name = "trained_movielens_like"
    repo, oracle = build_repository(towerrt, work, [name, "basic_single"])
    srv = Server(towerrt, repo, work, "--threads", "2")
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{srv.port}")
    check(client.is_server_live() and client.is_server_ready(), "live/ready")
    check(client.is_model_ready(name), "model ready")
    meta = client.get_model_metadata(name)
    check(meta["name"] == name and meta["versions"] == ["1"], meta)
    n = 0
    for model in oracle:
        reqs, scores = oracle[model]
        for (uids, dense, cand), want in zip(reqs, scores):
            want = np.array([float(x) for x in want], dtype=np.float32)
            for binary in (True, False):
                inputs = [httpclient.InferInput("user_ids", [1, len(uids)], "INT64")]
                inputs[0].set_data_from_numpy(np.array([uids], dtype=np.int64), binary_data=binary)
                if dense:
                    inputs.append(httpclient.InferInput("user_dense", [1, len(dense)], "FP32"))
                    inputs[-1].set_data_from_numpy(np.array([[float(x) for x in dense]], dtype=np.float32),
                                                   binary_data=binary)
                inputs.append(httpclient.InferInput("candidate_ids", [len(cand)], "UINT64"))
                inputs[-1].set_data_from_numpy(np.array(cand, dtype=np.uint64), binary_data=binary)
                outputs = [httpclient.InferRequestedOutput("scores", binary_data=binary)]
                res = client.infer(model, inputs, outputs=outputs)
                got = res.as_numpy("scores")
                check(got.dtype == np.float32 and got.tobytes() == want.tobytes(),
                      f"{model} binary={binary}: {got} != library {want}")
                n += 1
            # no outputs named: tritonclient asks for all outputs in binary
            res = client.infer(model, inputs[:-1] + [inputs[-1]])
            check(res.as_numpy("scores").tobytes() == want.tobytes(), f"{model}: default outputs")
            # top-n through request parameters
            res = client.infer(model, inputs, parameters={"top_n": 2},
                               outputs=[httpclient.InferRequestedOutput("top_ids"),
                                        httpclient.InferRequestedOutput("top_scores")])
            top = res.as_numpy("top_scores")
            check(len(top) == min(2, len(cand)) and top[0] == want.max(), f"{model}: top-n {top}")
    client.close()
    rc = srv.stop()
    check(rc == 0, f"server exit {rc}")
    print(f"tritonclient {httpclient.__name__}: {n} inferences (binary and JSON) equal the library bit for bit")
    print("serve tritonclient: passed")


if __name__ == "__main__":
    main()
