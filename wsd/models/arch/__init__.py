"""One module per architecture; every module here is imported by the registry on first use
(adding an architecture is adding one file)."""
