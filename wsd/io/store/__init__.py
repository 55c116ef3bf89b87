"""The only code that touches h5py: the file layout, validation on open and atomic writes.

* :mod:`~wsd.io.store.schema`: the layout every wsd file shares, and its writers;
* :mod:`~wsd.io.store.kinds`: the registry of file kinds and what each must hold;
* :mod:`~wsd.io.store.files`: :func:`open_file`, reading with checks;
* :mod:`~wsd.io.store.atomic`: outputs written whole or not at all, and the output lock;
* :mod:`~wsd.io.store.rows`, :mod:`~wsd.io.store.windows`, :mod:`~wsd.io.store.models`:
  streamed per-row outputs, windows shards, model files and checkpoints.
"""

from wsd.io.store.atomic import (atomic_output, check_output, ensure_space, output_lock,
                                 temp_path)
from wsd.io.store.files import WsdFile, open_file, open_h5
from wsd.io.store.schema import (FORMAT, SOURCE_COLUMNS, STR, concat_sources, empty_sources,
                                 history_line, read_params, write_header, write_params,
                                 write_rows, write_sources)

__all__ = ["FORMAT", "SOURCE_COLUMNS", "STR", "WsdFile", "atomic_output", "check_output",
           "concat_sources", "empty_sources", "ensure_space", "history_line", "open_file", "open_h5",
           "output_lock", "read_params", "temp_path", "write_header", "write_params",
           "write_rows", "write_sources"]
