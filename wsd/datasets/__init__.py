"""Built-in example data: the synthetic call generator."""
