"""One coordinator per command: inputs, tasks, shards, progress events, outputs."""
