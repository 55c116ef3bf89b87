"""Pure discovery cores: call sequences, DTW, agglomerative and sampled clustering, novelty."""
