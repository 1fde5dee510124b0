"""The model folder on disk: written atomically, recovered after a killed writer, read back checked
(folder.py), and described as a model card (card.py)."""
