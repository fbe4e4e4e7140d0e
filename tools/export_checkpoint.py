"""Reading an IntTower checkpoint for export (tools/export_inttower.py):
the state_dict (.npz with the standard library, .pt/.pth/.ckpt with torch),
the file provenance recorded in META, the shape-checked access to its
tensors (_Weights), and which user FE layers the model was trained with,
inferred from the checkpoint where it proves it (docs/exporter.md)."""

import collections
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import towerrt_format as tf  # noqa: E402
from export_config import DEFAULT_FE_LAYERS, ExportError  # noqa: E402


# --------------------------------------------------------------------------
# state dict

def _to_array(name, v):
    """A tensor-like value -> tf.NpyArray."""
    if isinstance(v, tf.NpyArray):
        return v
    if hasattr(v, "detach") and hasattr(v, "dtype"):      # torch.Tensor
        t = v.detach().cpu().contiguous()
        shape = tuple(t.shape)
        if t.is_floating_point():
            t = t.float()
            try:
                data = t.numpy().tobytes()
                if sys.byteorder != "little":
                    data = tf.f32_bytes(t.reshape(-1).tolist())
            except Exception:  # noqa: BLE001 - torch without numpy
                data = tf.f32_bytes(t.reshape(-1).tolist())
            return tf.NpyArray(shape, "<f4", data)
        return tf.make_array([int(x) for x in t.reshape(-1).tolist()], shape, "<i8")
    if hasattr(v, "dtype") and hasattr(v, "tobytes") and hasattr(v, "shape"):   # numpy
        import numpy as np  # only reached when given numpy arrays
        a = np.ascontiguousarray(v)
        if a.dtype.kind == "f":
            a = a.astype("<f4")
        return tf.NpyArray(a.shape, a.dtype.str, a.tobytes())
    raise ExportError("state_dict entry %r: unsupported value type %s" % (name, type(v).__name__))


def load_state_dict(src, log=None):
    """Path (.npz: standard library; anything else: torch.load) or mapping ->
    ordered dict name -> tf.NpyArray."""
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if not os.path.exists(path):
            raise ExportError("weights file %s does not exist" % path)
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic == b"PK\x03\x04" and (path.endswith(".npz") or _is_npz(path)):
            try:
                raw = tf.read_npz(path)
            except tf.FormatError as e:
                raise ExportError(str(e))
        else:
            try:
                import torch
            except ImportError:
                raise ExportError("%s is not an .npz file, and reading it needs PyTorch, which is not "
                                  "installed here; convert it to .npz (numpy.savez(path, **{k: v.numpy() "
                                  "for k, v in state_dict.items()}))" % path)
            try:
                raw = torch.load(path, map_location="cpu")
            except Exception as e:  # noqa: BLE001
                raise ExportError("%s: torch.load failed: %s" % (path, e))
            if hasattr(raw, "state_dict") and callable(raw.state_dict):
                raw = raw.state_dict()
            if isinstance(raw, dict):
                for k in ("state_dict", "model_state_dict", "model"):
                    if k in raw and isinstance(raw[k], dict):
                        raw = raw[k]
                        break
    else:
        raw = src
    if not hasattr(raw, "items"):
        raise ExportError("the weights are not a state_dict (a mapping name -> tensor)")
    keys = list(raw.keys())
    if keys and all(k.startswith("module.") for k in keys):
        if log:
            log("note: stripping the 'module.' prefix (DataParallel) from all tensor names")
        raw = collections.OrderedDict((k[len("module."):], v) for k, v in raw.items())
    return collections.OrderedDict((k, _to_array(k, v)) for k, v in raw.items())


def _is_npz(path):
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            return all(n.endswith(".npy") for n in z.namelist())
    except zipfile.BadZipFile:
        return False


def provenance(weights, config, record=True):
    """-> (general.source, extra META entries, default model name). Only file
    names and sha256 are recorded, never a directory: a shipped model must not
    carry the exporting machine's layout. record=False: nothing about the files."""
    is_path = lambda x: isinstance(x, (str, os.PathLike))  # noqa: E731
    name = os.path.splitext(os.path.basename(os.fspath(weights)))[0] if is_path(weights) else None
    if not record:
        return "not recorded", [], name
    if not is_path(weights):
        return "in-memory state_dict", [], name
    digest = sha256_file(os.fspath(weights))
    extra = [("export.weights_sha256", tf.META_STRING, digest)]
    if is_path(config):
        extra.append(("export.config", tf.META_STRING, os.path.basename(os.fspath(config))))
        extra.append(("export.config_sha256", tf.META_STRING, sha256_file(os.fspath(config))))
    return "%s sha256:%s" % (os.path.basename(os.fspath(weights)), digest), extra, name


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------
# tensors, shape-checked

class _Weights(object):
    """Tracks which state_dict entries are used and checks shapes."""

    def __init__(self, sd):
        self.sd = sd
        self.used = []

    def has(self, name):
        return name in self.sd

    def get(self, name, shape, why):
        if name not in self.sd:
            near = [k for k in self.sd if k.split(".")[0] == name.split(".")[0]]
            hint = ""
            if near:
                hint = " (state_dict has %s)" % ", ".join(near[:6] + (["..."] if len(near) > 6 else []))
            raise ExportError("missing tensor %s: %s, expected shape %s%s" % (name, why, _shp(shape), hint))
        a = self.sd[name]
        if shape is not None and tuple(a.shape) != tuple(shape):
            if not (tuple(shape) == (1,) and tuple(a.shape) == ()):
                raise ExportError("tensor %s has shape %s, expected %s (%s)" % (name, _shp(a.shape), _shp(shape), why))
        if a.descr[1:] not in ("f4", "f8", "f2"):
            raise ExportError("tensor %s has dtype %s; expected floating point" % (name, a.descr))
        if name not in self.used:
            self.used.append(name)
        return a

    def shape(self, name):
        return tuple(self.sd[name].shape)


def _shp(s):
    return "(" + ", ".join(str(x) for x in s) + ("," if len(s) == 1 else "") + ")"


def _layer_count(w, prefix, what):
    n = 0
    while w.has("%s.linears.%d.weight" % (prefix, n)):
        n += 1
    stray = [k for k in w.sd if k.startswith(prefix + ".linears.")
             and k.split(".")[2].isdigit() and int(k.split(".")[2]) >= n]
    if stray:
        raise ExportError("%s: %s.linears.%d.weight is missing but %s exists (layers must be numbered 0..n-1)"
                          % (what, prefix, n, stray[0]))
    if n == 0:
        raise ExportError("missing tensor %s.linears.0.weight: the %s has no layers" % (prefix, what))
    return n


def _fe_indices(w, prefix):
    idx = set()
    for k in w.sd:
        parts = k.split(".")
        if len(parts) == 4 and parts[0] == prefix and parts[1] == "Fe_linears" and parts[2].isdigit():
            idx.add(int(parts[2]))
    return sorted(idx)


# --------------------------------------------------------------------------
# which user FE layers the checkpoint was trained with (docs/exporter.md,
# "Which FE layers a checkpoint was trained with")
#
# In the reference User_Fe_DNN, Fe_linears[i] projects the INPUT of user layer
# i, so user layer j (Linear + BatchNorm) receives a gradient only if some FE
# layer i > j scores, and Fe_linears[i] only if layer i scores. Parameters that
# never receive a gradient keep their initial values under Adam/SGD: BatchNorm
# weight 1 and bias 0 exactly, Fe_linears inside PyTorch's nn.Linear init range
# |x| <= 1/sqrt(fan_in). Running statistics are no evidence: every training
# forward pass updates them, scored or not.

FE_INIT_SLACK = 1e-6   # relative slack on the init bound (float32 rounding of the bound)


class FeEvidence(object):
    """trained / untrained: user FE layers proven by the checkpoint; looks_untrained:
    layers whose projection is still inside its init range (suggestive only);
    contradiction: a reason the evidence cannot be used (or None); reasons: log lines."""

    def __init__(self):
        self.trained, self.untrained, self.looks_untrained = set(), set(), set()
        self.contradiction = None
        self.reasons = []

    def complete(self, user_fe):
        return not self.looks_untrained and set(user_fe) <= (self.trained | self.untrained)


def _bn_at_init(sd, j):
    w = sd.get("user_fe_dnn.bn.%d.weight" % j)
    b = sd.get("user_fe_dnn.bn.%d.bias" % j)
    if w is None or b is None:
        return False
    return all(v == 1.0 for v in w.tolist_flat()) and all(v == 0.0 for v in b.tolist_flat())


def _fe_inside_init(sd, i):
    w = sd["user_fe_dnn.Fe_linears.%d.weight" % i]
    bound = (1.0 + FE_INIT_SLACK) / (w.shape[1] ** 0.5)
    vals = w.tolist_flat() + sd["user_fe_dnn.Fe_linears.%d.bias" % i].tolist_flat()
    return max(abs(v) for v in vals) <= bound


def _layers_text(ls):
    ls = sorted(ls)
    return "%d" % ls[0] if len(ls) == 1 else "%s and %d" % (", ".join(str(x) for x in ls[:-1]), ls[-1])


def _bn_evidence(sd, n_layers, user_fe, ev):
    """BatchNorm at init on user layers t.. only proves: FE layer t scored, none deeper."""
    at_init = [j for j in range(n_layers) if _bn_at_init(sd, j)]
    if not at_init:
        ev.reasons.append("every user BatchNorm has moved from its initial weight 1 / bias 0, so it says "
                          "nothing (with the reference fe_score the last user layer gets no gradient)")
        return
    t = at_init[0]
    if at_init != list(range(t, n_layers)):
        ev.contradiction = ("user BatchNorm %s at their initial weight 1 / bias 0 but %s trained: not a suffix "
                            "of the tower, which no choice of FE layers gives"
                            % (_layers_text(at_init), _layers_text(set(range(at_init[-1])) - set(at_init))))
        return
    if t not in user_fe:
        ev.contradiction = ("user BatchNorm says FE layer %d scored but the checkpoint has no "
                            "user_fe_dnn.Fe_linears.%d" % (t, t))
        return
    ev.trained.add(t)
    ev.untrained |= set(i for i in user_fe if i > t)
    ev.reasons.append("user BatchNorm %s at exactly weight 1 / bias 0 in every channel (never received a "
                      "gradient)%s: FE layer %d scored and none deeper"
                      % (_layers_text(at_init), "" if t == 0 else ", BatchNorm %s trained" % _layers_text(range(t)),
                         t))


def fe_evidence(sd, n_layers, user_fe):
    """-> FeEvidence for the user FE layers user_fe of a tower of n_layers."""
    ev = FeEvidence()
    if any(k.startswith("user_fe_dnn.bn.") for k in sd):
        _bn_evidence(sd, n_layers, user_fe, ev)
    else:
        ev.reasons.append("no user BatchNorm in the checkpoint: only the FE projections are evidence")
    inside = [i for i in user_fe if _fe_inside_init(sd, i)]
    outside = [i for i in user_fe if i not in inside]
    bad = [i for i in outside if i in ev.untrained]
    if bad and ev.contradiction is None:
        ev.contradiction = ("user Fe_linears.%d has left its initial range but the BatchNorm says FE layer %d "
                            "never scored" % (bad[0], bad[0]))
    if ev.contradiction:
        ev.trained, ev.untrained = set(), set()
        return ev
    if outside:
        ev.trained |= set(outside)
        ev.reasons.append("user Fe_linears.%s %s values beyond PyTorch's initial range 1/sqrt(fan_in): trained"
                          % (_layers_text(outside), "has" if len(outside) == 1 else "have"))
    ev.looks_untrained = set(i for i in inside if i not in ev.trained and i not in ev.untrained)
    if ev.looks_untrained:
        ev.reasons.append("user Fe_linears.%s still inside PyTorch's initial range 1/sqrt(fan_in): "
                          "probably never trained" % _layers_text(ev.looks_untrained))
    return ev


def choose_fe_layers(sd, n_layers, user_fe, given, given_from, log):
    """The FE layers to record: given (an option or the configuration) always wins;
    else the checkpoint's evidence where it settles every layer; else the
    reference default [0, 1, 2] less the layers proven untrained, plus those
    proven trained. Logs which, and warns where the evidence disagrees or is
    only suggestive. -> (fe_layers, origin)"""
    ev = fe_evidence(sd, n_layers, user_fe)
    why = "; ".join(ev.reasons)
    if given is not None:
        fe = sorted(set(given))
        wrong = (set(fe) & ev.untrained) | (ev.trained - set(fe))
        if ev.contradiction:
            log("note: fe_layers %s from %s; the checkpoint's own evidence is contradictory (%s)"
                % (fe, given_from, ev.contradiction))
        elif wrong:
            log("warning: fe_layers %s from %s contradict the checkpoint, which shows FE layers %s trained%s (%s); "
                "using %s as given" % (fe, given_from, sorted(ev.trained),
                                       " and %s never scored" % sorted(ev.untrained) if ev.untrained else "", why, fe))
        elif set(fe) & ev.looks_untrained:
            log("warning: fe_layers %s from %s include %s, which look untrained (%s); using %s as given"
                % (fe, given_from, sorted(set(fe) & ev.looks_untrained), why, fe))
        else:
            log("note: fe_layers %s from %s, consistent with the checkpoint (%s)" % (fe, given_from, why))
        return fe, given_from
    default = [i for i in DEFAULT_FE_LAYERS if i < n_layers]
    if ev.contradiction:
        log("warning: the checkpoint's evidence on its FE layers is contradictory (%s); using the reference "
            "default %s: give --fe-layers if the model was trained otherwise" % (ev.contradiction, default))
        return default, "default (evidence contradictory)"
    if ev.complete(user_fe) and ev.trained:
        fe = sorted(ev.trained)
        log("fe_layers %s inferred from the checkpoint (unambiguous): %s" % (fe, why))
        return fe, "checkpoint (unambiguous)"
    fe = sorted((set(default) - ev.untrained) | ev.trained)
    guess = sorted(set(fe) - ev.looks_untrained) or fe
    if set(fe) & ev.looks_untrained:
        log("warning: fe_layers %s (the reference default%s), but the checkpoint suggests %s: %s. If the model "
            "was trained with FE layers %s, export with --fe-layers %s"
            % (fe, "" if fe == default else " less what the checkpoint rules out", guess, why, guess,
               ",".join(str(x) for x in guess)))
        return fe, "default (checkpoint suggests %s)" % guess
    log("fe_layers %s: the reference default%s (%s)" % (fe, "" if fe == default else ", corrected by the checkpoint",
                                                        why))
    return fe, "default"
