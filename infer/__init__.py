"""Inference on trained runs: scoring, prediction, writers, calibration, evaluation, plots and comparison."""
