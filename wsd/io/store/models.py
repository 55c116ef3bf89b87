"""Model files (``wsd_kind`` = model) and training checkpoints, as HDF5, never pickles.

Layout: root attributes as for every wsd file plus ``arch`` and ``arch_config`` (JSON); the
``spectrogram`` group of the windows it was trained on; ``weights/NAME`` one dataset per
tensor of the state dict (float32 or the tensor's integer type); ``normalisation`` attrs
``mean`` and ``std`` (dB); ``loss_history`` group (one dataset per logged quantity, one value
per epoch). Checkpoints add ``optim/I/...`` (each optimiser's state dict flattened: tensors as
datasets, the rest as JSON) and ``rng`` (random generator states) so that ``--resume``
continues exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from wsd.errors import BadInputError
from wsd.io.store.schema import _decode, read_params, write_header, write_params, write_sources


def _put_tree(g: h5py.Group, tree, name: str) -> None:
    """Nested dicts/lists of arrays and scalars: arrays as datasets, the rest as JSON."""
    import torch

    if isinstance(tree, torch.Tensor):
        g.create_dataset(name, data=tree.detach().cpu().numpy())
    elif isinstance(tree, np.ndarray):
        g.create_dataset(name, data=tree)
    elif isinstance(tree, dict) and all(isinstance(k, (str, int)) for k in tree):
        sub = g.create_group(name)
        sub.attrs["_type"] = "dict"
        sub.attrs["_keys"] = json.dumps([[type(k).__name__, k] for k in tree])
        for i, (k, v) in enumerate(tree.items()):
            _put_tree(sub, v, str(i))
    elif isinstance(tree, (list, tuple)) and any(isinstance(v, (dict, list, np.ndarray))
                                                 or hasattr(v, "detach") for v in tree):
        sub = g.create_group(name)
        sub.attrs["_type"] = type(tree).__name__
        sub.attrs["_len"] = len(tree)
        for i, v in enumerate(tree):
            _put_tree(sub, v, str(i))
    else:
        g.attrs["json:" + name] = json.dumps(tree)


def _get_tree(g: h5py.Group, name: str, as_tensor: bool):
    import torch

    if "json:" + name in g.attrs:
        return json.loads(_decode(g.attrs["json:" + name]))
    obj = g[name]
    if isinstance(obj, h5py.Dataset):
        arr = obj[()]
        return torch.from_numpy(np.array(arr)) if as_tensor else np.array(arr)
    t = _decode(obj.attrs["_type"])
    if t == "dict":
        keys = json.loads(_decode(obj.attrs["_keys"]))
        return {(int(k) if typ == "int" else k): _get_tree(obj, str(i), as_tensor)
                for i, (typ, k) in enumerate(keys)}
    items = [_get_tree(obj, str(i), as_tensor) for i in range(int(obj.attrs["_len"]))]
    return tuple(items) if t == "tuple" else items


def save_model(path, *, arch: str, config: dict, state_dict: dict, spectrogram: dict,
               norm: dict, params: dict, history: list[str], loss_history: dict,
               sources: dict | None = None, extra: dict | None = None,
               checkpoint: dict | None = None) -> None:
    """Write a model (or, with ``checkpoint``, a resumable checkpoint) to ``path``. The
    file is built in memory and written in one go, so a full disk is a plain OSError,
    never a half-flushed HDF5 file (which HDF5 may crash trying to close)."""
    from wsd.io.store.atomic import in_memory_h5

    with in_memory_h5(path) as f:
        write_header(f, "model", params, spectrogram, history)
        if sources is not None:
            write_sources(f, sources)
        f.attrs["arch"] = arch
        f.attrs["arch_config"] = json.dumps(config)
        w = f.create_group("weights")
        for k, v in state_dict.items():
            a = v.detach().cpu()
            a = a.float().numpy() if a.is_floating_point() else a.numpy()
            w.create_dataset(k, data=a)
        write_params(f.create_group("normalisation"), norm)
        lh = f.create_group("loss_history")
        for k, v in loss_history.items():
            lh.create_dataset(k, data=np.asarray(v, np.float64))
        for k, v in (extra or {}).items():
            f.create_dataset(k, data=np.asarray(v))
        if checkpoint is not None:
            c = f.create_group("checkpoint")
            for k, v in checkpoint.items():
                _put_tree(c, v, k)
        else:
            from wsd.io.store.netcdf import apply_schema

            apply_schema(f)  # dimension names and units for xarray


def load_model(path, checkpoint: bool = False) -> dict:
    """Read a model file: arch, config, state_dict (torch tensors), spectrogram, norm, ..."""
    import torch

    from wsd.io.store.files import open_file
    from wsd.io.store.netcdf import is_dim

    with open_file(path, "model") as wf:  # checked against the model kind on open
        f = wf.f
        try:
            out = {
                "path": str(path), "id": wf.file_id, "arch": _decode(f.attrs["arch"]),
                "config": json.loads(_decode(f.attrs["arch_config"])),
                "state_dict": {k: torch.from_numpy(np.array(d[()]))
                               for k, d in f["weights"].items()},
                "spectrogram": (read_params(f["spectrogram"]) if "spectrogram" in f else {}),
                "norm": read_params(f["normalisation"]),
                "params": read_params(f),
                "history": [x for x in _decode(f.attrs.get("history", "")).split("\n") if x],
                "loss_history": ({k: d[()].tolist() for k, d in f["loss_history"].items()}
                                 if "loss_history" in f else {}),
                "extra": {k: f[k][()] for k in f if isinstance(f[k], h5py.Dataset)
                          and not is_dim(f[k])},
                "sources": ({k: (d.asstr()[:] if d.dtype.kind == "O" else d[:])
                             for k, d in f["sources"].items()} if "sources" in f else None),
            }
            if checkpoint:
                if "checkpoint" not in f:
                    raise BadInputError("is not a checkpoint", path)
                c = f["checkpoint"]
                names = list(c.keys()) + [k[5:] for k in c.attrs if k.startswith("json:")]
                out["checkpoint"] = {k: _get_tree(c, k, as_tensor=True) for k in names}
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise BadInputError(f"damaged model file ({type(e).__name__}: "
                                f"{str(e).splitlines()[0][:160] if str(e) else ''})",
                                path) from None
    if not out["spectrogram"]:
        raise BadInputError("model has no spectrogram settings (group 'spectrogram')", path)
    return out


def checkpoint_path(out) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".ckpt")
