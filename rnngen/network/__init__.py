"""The network in numpy, whatever trained it: its weight layout (weights.py) and its forward pass
(forward.py), which generation, evaluation and the numpy training engine share."""
