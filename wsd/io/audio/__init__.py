"""The only code that decodes sound: streamed blocks, resampling, containers."""
