"""Tokens to training data: the vocabulary (vocab.py), a corpus read into one flat id stream
(corpus.py), and the padded batches cut from it one at a time (batches.py)."""
