"""The aptamer chapter: DNA strands, their folding free energy, a planted-answer simulator,
baselines and transformers (``notebooks/03_aptamers``)."""
