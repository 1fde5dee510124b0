"""The numpy training engine (`--engine numpy`, and `auto`'s choice on a CPU): the engine the run
opens (engine.py), a run's weights and optimizer (session.py), backpropagation through time
(backprop.py), Keras 3's Adam (adam.py) and Keras's initial weights (initializers.py).

It trains one-directional SimpleRNN, LSTM and GRU stacks, with dropout and tied embeddings, in line
or stream context, in float32 on one CPU. Bidirectional models, GPUs, mixed precision, several devices
and XLA are the Keras engine's; so is writing `model.keras` (`rnngen export --keras` does it later).
"""
