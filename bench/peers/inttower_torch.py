"""The IntTower request towerrt serves, in PyTorch, from a .twr's tensors:
one user's tower (embeddings, Light-SE, dense concat, Linear + BatchNorm
(eval) + ReLU layers, the FE projections of the scored user layers) once per
request, then the k candidates' item heads gathered by row from the store
tensor, MaxSim (sum over user heads of the max over item heads of the dot
product) and the prediction layer (sigmoid(score + bias)).

The same module is run eagerly, as TorchScript (torch.jit.trace + freeze)
and, exported with torch.onnx.export, by ONNX Runtime. The store is an input
(not a weight) so that the exported graph does not carry 800 MB of heads and
every implementation reads the same array.
"""

import torch
import torch.nn as nn

SINGLE, MULTI, DENSE = 0, 1, 2


class IntTowerRequest(nn.Module):
    def __init__(self, model, fe_layers=None, logits=False):
        super(IntTowerRequest, self).__init__()
        plan = model.plan[0]
        fields = model.side_fields(0)
        self.id_fields = [f for f in fields if f["kind"] != DENSE]
        self.n_dense = sum(f["dim"] for f in fields if f["kind"] == DENSE)
        t = lambda a: torch.from_numpy(a.copy())  # noqa: E731
        self.tables = nn.ParameterList([nn.Parameter(t(model.t(f["table"])), requires_grad=False)
                                        for f in self.id_fields])
        self.slots = [f["slots"] for f in self.id_fields]
        self.kinds = [f["kind"] for f in self.id_fields]
        self.combiners = [f["combiner"] for f in self.id_fields]
        w, b = plan["lightse"]
        self.se = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
        self.se.weight.data = t(w)
        if b is not None:
            self.se.bias.data = t(b)
        self.fe_layers = sorted(fe_layers if fe_layers else model.trained_fe)
        last = self.fe_layers[-1]
        self.linears = nn.ModuleList()
        self.bns = nn.ModuleList()
        self.relu = [L["relu"] for L in plan["layers"][:last]]
        for L in plan["layers"][:last]:
            lin = nn.Linear(L["w"].shape[1], L["w"].shape[0], bias=L["b"] is not None)
            lin.weight.data = t(L["w"])
            if L["b"] is not None:
                lin.bias.data = t(L["b"])
            self.linears.append(lin)
            if L["bn"] is not None:
                bn = nn.BatchNorm1d(L["w"].shape[0], eps=L["eps"])
                bn.weight.data, bn.bias.data = t(L["bn"][0]), t(L["bn"][1])
                bn.running_mean.data, bn.running_var.data = t(L["bn"][2]), t(L["bn"][3])
                self.bns.append(bn)
            else:
                self.bns.append(nn.Identity())
        self.fe = nn.ModuleList()
        for layer in self.fe_layers:
            w, b = plan["fe"][layer]
            lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
            lin.weight.data = t(w)
            if b is not None:
                lin.bias.data = t(b)
            self.fe.append(lin)
        self.heads, self.dim = model.user_heads, model.head_dim
        self.bias = float(model.out_bias)
        self.sigmoid = model.sigmoid and not logits
        self.eval()

    def user_heads(self, ids, dense):
        # ids: (slots,) int64 in field order; dense: (n_dense,) float32
        embs = []
        s = 0
        for i, table in enumerate(self.tables):
            n = self.slots[i]
            if self.kinds[i] == SINGLE:
                embs.append(table[ids[s]])
            else:  # multi-id, id 0 = padding, as the reference's masked pooling
                rows = table[ids[s:s + n]]
                mask = (ids[s:s + n] != 0).to(rows.dtype).unsqueeze(1)
                if self.combiners[i] == 2:
                    embs.append((rows - (1 - mask) * 1e9).max(0).values)
                else:
                    tot = (rows * mask).sum(0)
                    embs.append(tot / (mask.sum() + 1e-8) if self.combiners[i] == 0 else tot)
            s += n
        e = torch.stack(embs)                       # (F, d)
        a = torch.softmax(self.se(e.mean(dim=1)), dim=0)
        e = e + e * a.unsqueeze(1)                  # Light-SE, the reference's residual form
        x = torch.cat([e.reshape(-1), dense]) if self.n_dense else e.reshape(-1)
        heads = []
        j = 0
        for L in range(self.fe_layers[-1] + 1):
            if L in self.fe_layers:
                heads.append(self.fe[j](x).reshape(self.heads, self.dim))
                j += 1
            if L == self.fe_layers[-1]:
                break
            y = self.bns[L](self.linears[L](x).unsqueeze(0)).squeeze(0)
            x = torch.relu(y) if self.relu[L] else y
        return torch.cat(heads)                     # (n_fe * heads, dim)

    def forward(self, ids, dense, rows, store):
        u = self.user_heads(ids, dense)             # (U, p), once per request
        items = store.index_select(0, rows)         # (k, H, p): the candidates' rows
        # one (k*H, p) x (p, U) GEMM, the fastest form in both PyTorch and ONNX Runtime
        # (a batched (k, H, p) x (p, U) matmul runs k tiny GEMMs one after the other)
        dots = torch.matmul(items.reshape(-1, items.shape[2]), u.t()).reshape(items.shape[0], items.shape[1], -1)
        score = dots.amax(dim=1).sum(dim=1) + self.bias
        return torch.sigmoid(score) if self.sigmoid else score
