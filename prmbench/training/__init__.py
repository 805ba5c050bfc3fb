"""Training process reward models: `prmbench train-prm` and `prmbench plot-training`.

- `data`: labelled solutions (prmbench.labels readers) -> token examples with step-tag positions
- `model`: the value-head PRM (backbone + Linear -> ReLU -> Linear) and its per-step BCE loss
- `flops`: parameter counts, training FLOPs (6 x N x D) and the backbone pre-training table
- `train_prm`: the transformers Trainer setup, logging, evaluation, resume and the final checkpoint
- `plot_training`: accuracy against training steps and against total FLOPs
"""
