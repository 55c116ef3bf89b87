"""One thin module per command: options -> frozen params -> pipeline -> exit status."""
