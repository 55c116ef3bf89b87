"""netCDF-4 dimension scales, coordinates and CF attributes, so that every wsd file opens in
xarray (``xr.open_dataset(path, engine="h5netcdf")``) and pandas with named dimensions and
units, with no wsd installed.

Self-contained (h5py + numpy). With these labels every wsd file opens with
``xarray.open_dataset(path, engine="h5netcdf")`` (and ``group="sources"``, ``group="events"``,
..., and ``xarray.open_datatree``) without ``phony_dims``, and with netCDF4-python (except
float16 variables, which netCDF-C cannot read), while h5py reads every existing dataset by name
exactly as before (the labels are extra attributes on
the datasets plus a few new datasets at the root). See NOTES.md for the rules behind it.

Writer API (call while creating datasets; works for resizable datasets written in chunks):

    create_dim(f, "window", unlimited=True)        # index-only dimension: no storage at all
    create_coord(f, "freq", freqs, units="Hz", long_name="frequency of the bin centre")
    ds = f.create_dataset("windows", ...)
    attach(ds, "window", "frame", "freq")          # one dimension name per axis
    describe(ds, units="dB re full-scale sine", long_name="...", coordinates="start_s end_s")
    ...
    finalize(f)                                    # unlimited dims take their final length
    assert not check(f)                            # what xarray/h5netcdf would reject

or, after writing a file the usual way, ``apply_schema(f)`` labels it from ``SCHEMA`` (also an
in-place upgrade of files written before the labels existed).
"""

from __future__ import annotations

import fnmatch

import h5py
import numpy as np

from wsd.io.store.variables import DIMS, LINKAGE_COLUMNS, SCHEMA, Var

__all__ = ["NOT_A_VARIABLE", "create_dim", "create_coord", "attach", "describe", "finalize",
           "check", "label", "apply_schema", "is_dim", "dims_of"]

#: NAME of a dimension scale that is a netCDF dimension but not a variable (netCDF-C's
#: convention, which h5netcdf and netCDF-C both honour: the dataset then stays hidden).
NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."
STR = h5py.string_dtype("utf-8")


# ----------------------------------------------------------------------------- helpers

def _root(obj) -> h5py.Group:
    return obj.file["/"]


def is_dim(ds) -> bool:
    """True for a dimension scale (a netCDF dimension, with or without coordinate values)."""
    return isinstance(ds, h5py.Dataset) and ds.attrs.get("CLASS") == b"DIMENSION_SCALE"


def is_index_only(ds) -> bool:
    """True for a dimension without coordinate variable (xarray does not show it)."""
    name = ds.attrs.get("NAME", b"")
    name = name.encode() if isinstance(name, str) else bytes(name)
    return is_dim(ds) and name.startswith(NOT_A_VARIABLE.encode())


def _find_dim(group: h5py.Group, name: str) -> h5py.Dataset:
    """The scale ``name`` visible from ``group``: netCDF scoping, nearest ancestor first."""
    g = group
    while True:
        obj = g.get(name)
        if obj is not None and is_dim(obj):
            return obj
        if g.name == "/":
            raise KeyError(f"no dimension {name!r} visible from {group.name} "
                           "(create_dim/create_coord it first, at the root)")
        g = g.parent


def create_dim(f, name: str, size: int = 0, *, unlimited: bool = False) -> h5py.Dataset:
    """A netCDF dimension without coordinate variable, at the root group.

    What netCDF-C and h5netcdf write themselves: a float32 dataset of shape (size,) that is
    never written, so HDF5 allocates no storage for it whatever ``size`` is (measured: the
    same few hundred bytes of header for 10 rows or 10^8). ``unlimited`` makes it resizable
    (maxshape None): its length is then the longest attached axis, for xarray, h5netcdf and
    netCDF-C alike, so it can be attached before any row exists; ``finalize`` tidies it.
    Idempotent: an existing dimension of that name is returned.
    """
    root = _root(f)
    if name in root:
        ds = root[name]
        if not is_dim(ds):
            raise ValueError(f"{name!r} already exists and is not a dimension: a dimension "
                             "must not share its name with a variable")
        return ds
    kw = {"maxshape": (None,), "chunks": (1024,)} if unlimited else {}
    ds = root.create_dataset(name, shape=(0 if unlimited else int(size),), dtype="f4", **kw)
    ds.make_scale(f"{NOT_A_VARIABLE}{(0 if unlimited else int(size)):10d}")
    return ds


def create_coord(f, name: str, values, *, units: str | None = None,
                 long_name: str | None = None, **attrs) -> h5py.Dataset:
    """A dimension coordinate (1-D scale with values, e.g. ``freq`` in Hz), at the root.

    Values must be 1-D (numbers or str). xarray makes it an index, so ``sel`` works on it.
    """
    root = _root(f)
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"coordinate {name!r} must be 1-D, got shape {values.shape}")
    if name in root:
        ds = root[name]
        if not is_dim(ds) or is_index_only(ds):
            raise ValueError(f"{name!r} already exists and is not a coordinate")
        if ds.shape != values.shape or not np.array_equal(ds[()].astype(values.dtype), values):
            raise ValueError(f"coordinate {name!r} exists with other values")
    elif values.dtype.kind in "OUS":
        ds = root.create_dataset(name, data=values.astype(object), dtype=STR)
    else:
        ds = root.create_dataset(name, data=values)
    if not is_dim(ds):
        ds.make_scale(name)
    describe(ds, units=units, long_name=long_name, **attrs)
    return ds


def attach(ds: h5py.Dataset, *dims: str) -> h5py.Dataset:
    """Label every axis of ``ds`` with a dimension (names of scales made by create_dim or
    create_coord). Any other scale already on an axis (e.g. the old ``freqs`` "frequency"
    scale) is detached. A fixed-length dimension must match the axis length; attach to an
    unlimited one when the dataset grows."""
    if len(dims) != ds.ndim:
        raise ValueError(f"{ds.name}: {ds.ndim} axes but {len(dims)} dimension names {dims}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"{ds.name}: dimension named twice in {dims} (xarray cannot index "
                         "it; give the second axis its own dimension, e.g. sequence_2)")
    for axis, name in enumerate(dims):
        scale = _find_dim(ds.parent, name)
        if scale.maxshape != (None,) and scale.shape[0] != ds.shape[axis]:
            raise ValueError(f"{ds.name} axis {axis} has length {ds.shape[axis]} but dimension "
                             f"{name!r} is fixed at {scale.shape[0]} (netCDF-C would truncate)")
        current = ds.dims[axis]
        have = [current[i] for i in range(len(current))]
        for s in have:
            if s.id != scale.id:
                current.detach_scale(s)
        if not any(s.id == scale.id for s in have):
            current.attach_scale(scale)
    return ds


def describe(obj, *, units: str | None = None, long_name: str | None = None,
             coordinates: str | tuple | list | None = None, **attrs) -> None:
    """CF-style attributes; None values are left out. ``coordinates`` names auxiliary
    coordinate variables (xarray makes them coordinates of the variable and dataset)."""
    if isinstance(coordinates, (tuple, list)):
        coordinates = " ".join(coordinates)
    for k, v in (("units", units), ("long_name", long_name), ("coordinates", coordinates),
                 *attrs.items()):
        if v is not None:
            obj.attrs[k] = v


def dims_of(ds: h5py.Dataset) -> tuple[str | None, ...]:
    """The dimension name of each axis (None where unlabelled)."""
    out = []
    for d in ds.dims:
        out.append(d[len(d) - 1].name.rsplit("/", 1)[-1] if len(d) else None)
    return tuple(out)


def _walk(f):
    out = []
    f.visititems(lambda n, o: out.append(o) if isinstance(o, h5py.Dataset) else None)
    return out


def finalize(f) -> None:
    """Give every unlimited index-only dimension the length of its longest attached axis
    (no storage is allocated; only ``len(f[name])`` changes) and drop from ``coordinates``
    attributes the variables that were never written. Call before closing."""
    lengths: dict[str, int] = {}
    for ds in _walk(f):
        if is_dim(ds):
            continue
        for axis, name in enumerate(dims_of(ds)):
            if name is not None:
                lengths[name] = max(lengths.get(name, 0), ds.shape[axis])
    for ds in _walk(f):  # drop auxiliary coordinates that were never written
        if "coordinates" in ds.attrs:
            names = _str(ds.attrs["coordinates"]).split()
            keep = [c for c in names if c in ds.parent and isinstance(ds.parent[c], h5py.Dataset)]
            if keep != names:
                if keep:
                    ds.attrs["coordinates"] = " ".join(keep)
                else:
                    del ds.attrs["coordinates"]
    root = _root(f)
    for name, n in lengths.items():
        s = root.get(name)
        if s is not None and is_index_only(s) and s.maxshape == (None,) and s.shape[0] != n:
            s.resize((n,))


def check(f, *, netcdf_c: bool = False) -> list[str]:
    """Problems that would stop xarray (engine h5netcdf) from opening the file without
    phony_dims, or make it wrong. ``netcdf_c`` adds what netCDF-C (netCDF4-python) cannot
    read: float16 variables (read as strings; reading them crashed netCDF-C 4.10.1)."""
    problems = []
    groups_dims: dict[str, set] = {}
    for ds in _walk(f):
        if is_dim(ds):
            if ds.ndim != 1:
                problems.append(f"{ds.name}: a dimension scale must be 1-D")
            continue
        names = dims_of(ds)
        where = ds.parent.name
        if ds.ndim and None in names:
            bad = [i for i, n in enumerate(names) if n is None]
            problems.append(f"{ds.name}: axes {bad} have no dimension "
                            f"({'mixed: fails even with phony_dims' if len(bad) < ds.ndim else 'phony dims'})")
            continue
        if len(set(names)) != len(names):
            problems.append(f"{ds.name}: same dimension twice {names}")
        for axis, name in enumerate(names):
            s = _find_dim(ds.parent, name)
            if s.maxshape != (None,) and s.shape[0] != ds.shape[axis]:
                problems.append(f"{ds.name}: axis {axis} length {ds.shape[axis]} != "
                                f"dimension {name!r} length {s.shape[0]}")
            if s.parent.name != "/" and not where.startswith(s.parent.name):
                problems.append(f"{ds.name}: dimension {name!r} is not in an ancestor group")
        groups_dims.setdefault(where, set()).update(names)
        if netcdf_c and ds.dtype == np.float16:
            problems.append(f"{ds.name}: float16 (netCDF-C reads it as a string; store "
                            "float32 or int16 with scale_factor for netCDF-C tools)")
    for where, used in groups_dims.items():
        g = f.file[where]
        for name in used:
            obj = g.get(name)
            if obj is not None and isinstance(obj, h5py.Dataset) and not is_dim(obj):
                problems.append(f"{where}/{name}: variable named like the dimension {name!r} "
                                "it does not index (xarray refuses)")
    return problems


def _spec_for(kind: str, path: str) -> Var | None:
    table = SCHEMA.get(kind, {})
    if path in table:
        return table[path]
    for pat, var in table.items():
        if "*" in pat and fnmatch.fnmatchcase(path, pat):
            return var
    return None


def _units(var: Var, root) -> str | None:
    if isinstance(var.units, dict):
        for attr, table in var.units.items():
            v = root.attrs.get(attr)
            v = v.decode() if isinstance(v, bytes) else v
            return table.get(v)
        return None
    return var.units


def _freq_values(f, n: int) -> np.ndarray:
    """Bin centre frequencies: the file's ``freqs`` if any, else from its spectrogram."""
    if "freqs" in f and f["freqs"].shape == (n,):
        return np.asarray(f["freqs"][()], np.float64)
    s = f["spectrogram"].attrs
    sr, n_fft = float(s["sample_rate"]), int(s["n_fft"])
    fr = np.arange(n_fft // 2) * (sr / n_fft)
    hi = float(s["fmax"]) if "fmax" in s else np.inf
    fr = fr[(fr >= float(s.get("fmin", 0.0))) & (fr <= hi)]
    if len(fr) != n:
        raise ValueError(f"spectrogram settings give {len(fr)} bins, data have {n}")
    return fr


def _frame_values(f, n: int) -> np.ndarray:
    s = f["spectrogram"].attrs
    return np.arange(n) * (float(s["hop_length"]) / float(s["sample_rate"]))


def _ensure_dim(f, name: str, size: int, unlimited: bool) -> None:
    if name in _root(f):
        return
    if name.startswith("n") and name not in DIMS:  # by-size dims of model weights
        create_dim(f, name, size)
        return
    d = DIMS[name]
    if not d.coordinate:
        create_dim(f, name, size, unlimited=unlimited)
    elif name == "freq":
        create_coord(f, name, _freq_values(f, size), units=d.units, long_name=d.long_name)
    elif name == "frame":
        create_coord(f, name, _frame_values(f, size), units=d.units, long_name=d.long_name)
    elif name == "linkage_column":
        create_coord(f, name, LINKAGE_COLUMNS[:size], long_name=d.long_name)
    else:
        raise ValueError(f"no values known for coordinate {name!r}")


def _by_size(shape) -> tuple[str, ...]:
    seen: dict[int, int] = {}
    out = []
    for n in shape:
        seen[n] = seen.get(n, 0) + 1
        out.append(f"n{n}" if seen[n] == 1 else f"n{n}_{seen[n]}")
    return tuple(out)


def label(ds: h5py.Dataset, kind: str | None = None) -> Var | None:
    """Attach the dimensions ``SCHEMA`` gives ``ds`` and write its CF attributes; call it
    right after ``create_dataset`` (before or after the data). Dimensions not yet in the
    file are created from the dataset: unlimited for a resizable axis (maxshape None), else
    fixed at the axis length; ``create_dim(f, "window", unlimited=True)`` first also works. The ``coordinates`` attribute names
    the schema's row coordinates; ``finalize`` drops those that were never written.
    Returns the schema entry, or None for a dataset the schema does not know (labelled by
    fallback: the row dimension on axis 0 when the length matches, by-size dims otherwise)."""
    root = _root(ds)
    kind = kind or _str(root.attrs.get("wsd_kind"))
    rel = ds.name.lstrip("/")
    var = _spec_for(kind, rel)
    known = var is not None
    if var is None:
        row_dim = {"clusters": "sequence", "hits": "hit"}.get(kind, "window")
        n_rows = root["source_id"].shape[0] if "source_id" in root else None
        if ds.ndim and ds.parent.name == "/" and ds.shape[0] == n_rows:
            var = Var((row_dim, *_by_size(ds.shape[1:])), "")
        else:
            var = Var(_by_size(ds.shape), "")
    dims = _by_size(ds.shape) if var.dims == ("*",) else var.dims
    if len(dims) != ds.ndim:
        raise ValueError(f"{ds.name}: schema gives {dims} for shape {ds.shape}")
    for axis, name in enumerate(dims):  # a resizable axis gets an unlimited dimension
        _ensure_dim(ds.file, name, ds.shape[axis], unlimited=ds.maxshape[axis] is None)
    if ds.ndim:
        attach(ds, *dims)
    keep_units = "units" in ds.attrs  # never overwrite what a writer stated
    describe(ds, units=None if keep_units else _units(var, root),
             long_name=var.long_name or None, **var.attrs)
    if var.coordinates:
        own = ds.name.rsplit("/", 1)[-1]
        ds.attrs["coordinates"] = " ".join(c for c in var.coordinates.split() if c != own)
    return var if known else None


def _unscale_legacy_freqs(f) -> None:
    """Files before the labels: ``freqs`` was a scale named "frequency" on windows axis 2.
    Detach it everywhere and make it a plain variable again (it is then labelled ``freq``)."""
    root = _root(f)
    if "freqs" in root and is_dim(root["freqs"]):
        old = root["freqs"]
        for ref, axis in list(old.attrs.get("REFERENCE_LIST", [])):
            f[ref].dims[int(axis)].detach_scale(old)
        for a in ("CLASS", "NAME", "REFERENCE_LIST"):
            if a in old.attrs:
                del old.attrs[a]


def apply_schema(f, kind: str | None = None, *, source: str | None = None) -> dict:
    """Label every dataset of an open (writable) wsd file from ``SCHEMA`` (``label`` on each),
    set the global ``source`` attribute (default: "wsd VERSION (COMMAND)" from the last
    ``history`` line) and ``finalize``. Idempotent; also upgrades files written before the
    labels. Returns {"kind", "labelled": [...], "unknown": [...]} (unknown: datasets the
    schema does not list, labelled by fallback: extend SCHEMA for them)."""
    root = _root(f)
    kind = kind or _str(root.attrs.get("wsd_kind"))
    report = {"kind": kind, "labelled": [], "unknown": []}
    _unscale_legacy_freqs(f)
    for ds in _walk(f):
        if is_dim(ds):
            continue
        known = label(ds, kind)
        report["labelled" if known is not None else "unknown"].append(ds.name.lstrip("/"))
    if source is None and "source" not in root.attrs:
        ver = _str(root.attrs.get("wsd_version")) or "?"
        hist = (_str(root.attrs.get("history")) or "").strip()
        last = hist.split("\n")[-1] if hist else ""
        cmd = last.split(": ", 1)[0].split(" ")[-1] if ": " in last else kind
        source = f"wsd {ver} ({cmd})"
    if source is not None:
        root.attrs["source"] = source
    finalize(f)
    return report


def _str(v):
    return v.decode() if isinstance(v, bytes) else (None if v is None else str(v))
