#!/usr/bin/env bash
# The PTB recipe for one GPU, aimed at validation perplexity 85 or lower within 10 minutes of `train`.
# Zaremba et al.'s "medium" size (2 x LSTM 650), tied, with AWD-LSTM's locked dropouts and embedding
# dropout and a cosine schedule over about 38 epochs of about 14 s each (the untied-dropout version of
# this model took 14 s an epoch on one NVIDIA H200 with JAX: benchmarks/RESULTS.md). The Keras engine
# trains it (a GPU), so no weight drop, moving average or sampled softmax.
#
#     KERAS_BACKEND=jax bash benchmarks/ptb_gpu_recipe.sh [PTB_FOLDER] [OUTPUT_FOLDER]
#
# It prints the wall-clock seconds of `train` and then `evaluate`'s figures on the validation text.
set -euo pipefail
ptb=${1:-"$(dirname "$0")/../../shared/data/ptb"}
output=${2:-models/ptb-gpu}
started=$(date +%s)
python -m rnngen train "$ptb/ptb.train.txt" --valid "$ptb/ptb.valid.txt" --filters "" -o "$output" \
    --layers 2 --embedding-dim 650 --units 650 --tie-embeddings --dropout 0 --dropout-input 0.4 \
    --dropout-hidden 0.3 --dropout-output 0.45 --dropout-embedding 0.1 --batch-size 20 \
    --learning-rate 0.003 --lr-schedule cosine --warmup-steps 300 --epochs 38 --patience 38 \
    --context stream --device gpu --max-time 9m40s
echo "train: $(( $(date +%s) - started )) s" >&2
python -m rnngen evaluate "$ptb/ptb.valid.txt" -m "$output" --context stream --json
