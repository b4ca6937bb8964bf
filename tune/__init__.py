"""The hyperparameter search: Ray Tune + Optuna over EmoHRNet trained with Ray Train
(``python -m tune.search``)."""
