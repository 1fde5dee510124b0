"""A trained model put to use with numpy alone: choosing words (sampling.py), continuing prompts
(generation.py) and scoring a text (evaluation.py)."""
