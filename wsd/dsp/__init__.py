"""Pure signal processing: spectrograms, information features, silence, events."""
