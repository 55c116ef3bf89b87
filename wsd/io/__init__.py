"""Everything that touches files: the HDF5 store, audio decoding, inputs, labels and tables."""
