"""Evaluation of model versions on held-out data: text metrics, preference accuracy, answer length."""
