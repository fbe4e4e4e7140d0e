#!/usr/bin/env python3
"""A small PyTorch DAT (Dual Augmented Two-tower), faithful to the reference
forward pass (github archersama/IntTower: model/DAT.py on model/dual_tower.py),
in eval mode, with the reference's parameter names.

What the reference's DAT does at inference (model/DAT.py forward):
  per side: sparse = [single-id embeddings, pooled multi-id embeddings]
            aug    = torch.rand(sparse[-1].shape)      # (B, 1, d), U[0,1) noise, drawn anew
                                                       # at every forward, predict() included
            x      = combined_dnn_input(sparse + [aug], dense)
            v      = DNN(x)                            # as DSSM (dssm_ref.DNN)
  score  = Cosine_Similarity(u, i, gamma); output = sigmoid(score + out.bias)
The augmented vectors are NOT parameters: nothing in the state_dict; the
augmentation loss (preprocessing/utils.py dual_augmented_loss) is
training-only and only sees the same noise. So the reference's forward pass
is a function of the inputs AND of the noise; this module takes the
augmented vectors as explicit inputs (user_aug, item_aug: (B, d)), which
makes it deterministic:
  * 'input' (towerrt: dat.augment = input): the caller gives the vectors;
    with the reference's own noise this is the reference's forward pass;
  * 'constant' (towerrt: dat.augment = constant): a fixed vector for every
    row, by default 0.5 = E[U(0,1)], the deterministic serving choice.
Other reference quirks, handled by reading shapes from the checkpoint: DAT.py
hard-codes the DNN input widths (352 user, 225 item: the authors' data set)
and imports layers.interaction.SimNonLocal, which the same repository renamed
to LightSE before DAT.py was added (commit d7ce71b), so model/DAT.py does not
import as published; it carries User_SE / Item_SE (field sizes 2) and
User_sim_non_local / Item_sim_non_local, unused in the forward pass.
"""

import contextlib
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dssm_ref  # noqa: E402

AUG_MEAN = 0.5  # E[U(0,1)]: torch.rand's mean


class DATRef(dssm_ref.TwoTowerRef):
    ARCH = "dat"

    def __init__(self, cfg, hidden_units, se_field_sizes=(2, 2), **kw):
        super(DATRef, self).__init__(cfg, hidden_units, se_field_sizes=se_field_sizes, **kw)
        self.User_sim_non_local = dssm_ref.LightSE(se_field_sizes[0])
        self.Item_sim_non_local = dssm_ref.LightSE(se_field_sizes[1])

    def aug_width(self, side):
        return self.dims[side]  # the shape of the side's last sparse embedding

    def vectors(self, get_ids, get_dense, user_aug=None, item_aug=None):
        if user_aug is None or item_aug is None:
            raise ValueError("DAT needs the augmented vectors (user_aug, item_aug): see the module docstring")
        return super(DATRef, self).vectors(get_ids, get_dense, user_aug, item_aug)


def constant_aug(rows, width, value=AUG_MEAN, dtype=torch.float32):
    return torch.full((rows, width), float(value), dtype=dtype)


def from_checkpoint(config, state_dict, dtype=torch.float32, **kw):
    return dssm_ref.from_checkpoint(config, state_dict, cls=DATRef, dtype=dtype, **kw)


# --------------------------------------------------------------------------
# the unmodified reference class (for dssm_ref.py --check-reference-code)

def reference_dat(cols, conf, sd, hidden, use_bn):
    """model.DAT.DAT built from the reference code, with the patches it needs
    to run at all; returns (model, [patch descriptions])."""
    import layers.interaction as li  # noqa: E402 (the reference's)
    import layers.core as lc  # noqa: E402
    patches = []
    if not hasattr(li, "SimNonLocal") or getattr(li.SimNonLocal, "towerrt_alias", False):
        def sim_non_local(field_size, reduction_ratio=3, seed=1024, device="cpu"):
            return li.LightSE(field_size, seed=seed, device=device)
        sim_non_local.towerrt_alias = True
        li.SimNonLocal = sim_non_local
        patches.append("layers.interaction.SimNonLocal = LightSE (renamed in d7ce71b, same parameters)")
    import model.DAT as md  # noqa: E402
    model = md.DAT(cols["user"], cols["item"], gamma=conf.get("gamma", 1), dnn_use_bn=use_bn, dnn_hidden_units=tuple(hidden),
                   task=conf.get("task", "binary"))
    for side in ("user", "item"):
        w = int(sd["%s_dnn.linears.0.weight" % side].shape[1])
        hu = [int(sd["%s_dnn.linears.%d.weight" % (side, i)].shape[0]) for i in range(len(hidden))]
        setattr(model, "%s_dnn" % side, lc.DNN(w, hu, activation="relu", use_bn=use_bn))
    patches.append("DNN input widths %d/%d instead of the hard-coded 352/225"
                   % (sd["user_dnn.linears.0.weight"].shape[1], sd["item_dnn.linears.0.weight"].shape[1]))
    return model, patches


@contextlib.contextmanager
def feed_augmented_vectors(mode, user_rows, item_rows, cfg, batch_size):
    """Makes torch.rand return the given augmented vectors to DAT.forward
    (it draws user (unused), user, item per batch, shape (B, 1, d)), and
    .cuda() a no-op. mode 'constant': AUG_MEAN everywhere."""
    state = {"call": 0, "row": 0}
    orig_rand, orig_cuda = torch.rand, torch.Tensor.cuda

    def rand(*shape, **kw):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
            shape = tuple(shape[0])
        B, d = shape[0], shape[-1]
        which = state["call"] % 3
        state["call"] += 1
        if mode == "constant":
            out = torch.full(shape, AUG_MEAN)
        else:
            src = user_rows if which < 2 else item_rows
            out = torch.tensor(src[state["row"]:state["row"] + B], dtype=torch.float32).reshape(shape)
            assert out.shape[-1] == d
        if which == 2:
            state["row"] += B
        return out
    torch.rand = rand
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.rand = orig_rand
        torch.Tensor.cuda = orig_cuda
