"""Where work runs: serial, local processes or Dask; torchrun; device and bfloat16."""
