"""Training process reward models: `prmbench train-prm` and `prmbench plot-training`.

- `data`: labelled solutions (prmbench.labels readers) -> token examples with step-tag positions
- `model`: the value-head PRM (backbone + Linear -> ReLU -> Linear) and its per-step BCE loss
- `flops`: parameter counts, training FLOPs (6 x N x D) and the backbone pre-training table
- `config`: TrainConfig, the settings of a run (and which may change on --resume)
- `run_files`: training_log.jsonl, prmbench_training.json and the output-folder checks of --resume
- `live_eval`: --eval-task on the model being trained
- `train_prm`: the transformers Trainer setup, callbacks and the final checkpoint
- `plot_training`: accuracy against training steps and against total FLOPs
"""
