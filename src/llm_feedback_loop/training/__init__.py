"""Training: a run's settings (config.py), its data checked (data.py), one module per method (methods/), the
trainer run (runner.py), a run's whole life with its records (run.py, runs.py), and the API's queue of runs
(scheduler.py). `llmfl train` (cli/train.py) and the API's `/v1/runs` are thin callers of these."""
