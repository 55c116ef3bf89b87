"""One report section per kind of input file."""
