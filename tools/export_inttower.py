#!/usr/bin/env python3
"""Export an IntTower checkpoint made by the reference PyTorch code
(github archersama/IntTower) to a towerrt model file (.twr, docs/format.md).

Input:
  * weights: a state_dict saved with torch.save(model.state_dict()) (.pt/.pth/
    .ckpt, read with torch) or an .npz with the same names (read with the
    standard library only: no numpy, no torch);
  * the feature configuration: a JSON file (the layout of
    shared/fixtures/reference-inttower/config.json, or the general layout of
    docs/exporter.md), or a pickle of the reference's feature column lists
    (SparseFeat / VarLenSparseFeat / DenseFeat), or (from Python) the column
    objects themselves.

Command line:
  python3 tools/export_inttower.py --weights state_dict.npz --config config.json \\
      --out model.twr [--fe-layers 0,1,2] [--user-heads H --item-heads H --head-dim P]

From Python:
  import export_inttower
  export_inttower.export_inttower("state_dict.pt", "model.twr",
      user_columns=user_feature_columns, item_columns=item_feature_columns,
      user_heads=32, item_heads=32, head_dim=64)

Widths are read from the tensors; the configuration is cross-checked against
them and every mismatch is reported with the tensor name, the expected and the
found shape.

This file is the command line and export_inttower(); the work is in
  export_config.py           the feature configuration (JSON, column pickles)
  export_checkpoint.py       the state_dict, provenance, FE-layer inference
  export_inttower_graph.py   tensors, GRAPH and META of the model
  towerrt_format.py          the .twr writer (docs/format.md)
and their names are re-exported here (the tools and tests use
export_inttower.X).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import towerrt_format as tf  # noqa: E402
from export_checkpoint import (  # noqa: E402,F401  (re-exported)
    FE_INIT_SLACK, FeEvidence, _fe_indices, _is_npz, _layer_count, _shp, _to_array, _Weights, choose_fe_layers,
    fe_evidence, load_state_dict, provenance, sha256_file)
from export_config import (  # noqa: E402,F401  (re-exported)
    COMBINERS, DEFAULT_FE_LAYERS, KINDS, SIDE_CODE, SIDES, DenseFeat, ExportConfig, ExportError, FieldSpec, SparseFeat,
    VarLenSparseFeat, _apply_overrides, _posint, config_from_json, fields_from_columns, load_config,
    load_pickled_columns)
from export_inttower_graph import BN_EPS, EXPORTER_ID, EXPORTER_VERSION, build_model  # noqa: E402,F401


def export_inttower(weights, out_path, config=None, user_columns=None, item_columns=None,
                    head_dim=None, user_heads=None, item_heads=None, fe_layers=None, task=None,
                    name=None, log=None, provenance_record=True):
    """Export and write out_path. weights: path or mapping; config: path,
    parsed JSON dict or ExportConfig; or user_columns + item_columns (the
    reference's feature column objects). provenance_record=False: no file
    names or checksums in META. Returns the tf.Model written."""
    if log is None:
        def log(m):
            sys.stderr.write("export_inttower: %s\n" % m)
    if isinstance(config, ExportConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = config_from_json(config)
    elif config is not None:
        cfg = load_config(config, log)
    elif user_columns is not None and item_columns is not None:
        cfg = ExportConfig(fields_from_columns(user_columns, "user", log),
                           fields_from_columns(item_columns, "item", log))
    else:
        raise ExportError("no feature configuration: give config= or user_columns= and item_columns=")
    _apply_overrides(cfg, head_dim, user_heads, item_heads, fe_layers, task, name)
    sd = load_state_dict(weights, log)
    source, extra, default_name = provenance(weights, config, provenance_record)
    if cfg.name is None:
        cfg.name = default_name
    model = build_model(sd, cfg, source=source, log=log, extra_meta=extra, record_fe_origin=True)
    try:
        tf.write_twr(out_path, model)
    except tf.FormatError as e:
        raise ExportError(str(e))
    return model


def _parse_layers(s):
    try:
        return [int(x) for x in s.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise argparse.ArgumentTypeError("expected a comma-separated list of layer indices, e.g. 0,1,2")


def main(argv=None):
    # Two-tower family hook: --arch dssm|dat (and --arch inttower) is handled
    # by tools/export_family.py (docs/family.md).
    args = sys.argv[1:] if argv is None else list(argv)
    if any(x == "--arch" or x.startswith("--arch=") for x in args):
        import export_family
        return export_family.main(args)
    ap = argparse.ArgumentParser(prog="export_inttower.py",
                                 description="Export a reference IntTower state_dict to a towerrt .twr model.")
    ap.add_argument("--weights", required=True, help="state_dict: .npz (stdlib) or .pt (needs torch)")
    ap.add_argument("--config", required=True,
                    help="feature configuration: JSON (script layout or general layout) or a pickle of "
                         "feature column lists")
    ap.add_argument("--out", "-o", required=True, help="output .twr")
    ap.add_argument("--fe-layers", type=_parse_layers, default=None,
                    help="user FE layers the model was trained with (default: the config's, else what "
                         "the checkpoint proves (docs/exporter.md), else the reference fe_score's 0,1,2 "
                         "clipped to the tower depth; 0 for the README's 'Accelerate' variant)")
    ap.add_argument("--user-heads", type=int)
    ap.add_argument("--item-heads", type=int)
    ap.add_argument("--head-dim", type=int, help="dims per head (the reference's field_dim)")
    ap.add_argument("--task", choices=("binary", "regression"))
    ap.add_argument("--name")
    ap.add_argument("--no-provenance", action="store_true",
                    help="record no file names or checksums (general.source 'not recorded')")
    ap.add_argument("--quiet", "-q", action="store_true", help="no notes on stderr (warnings still)")
    a = ap.parse_args(argv)

    def log(m):
        if not a.quiet or m.startswith("warning"):
            sys.stderr.write("export_inttower: %s\n" % m)
    try:
        model = export_inttower(a.weights, a.out, config=a.config, head_dim=a.head_dim, user_heads=a.user_heads,
                                item_heads=a.item_heads, fe_layers=a.fe_layers, task=a.task, name=a.name, log=log,
                                provenance_record=not a.no_provenance)
    except (ExportError, tf.FormatError, OSError) as e:
        sys.stderr.write("export_inttower: error: %s\n" % e)
        return 1
    m = model.meta
    log("wrote %s: %d fields, %d tensors, %d graph nodes; %d user heads, %d item heads x %d dims; fe_layers %s"
        % (a.out, len(model.fields), len(model.tensors), len(model.graph), m["inttower.user_heads"],
           m["inttower.item_heads"], m["inttower.head_dim"], m["inttower.fe_layers"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
