"""Benchmarks of dataaccess against raw clients and naive baselines, plus measurement helpers
(latency recorder, Zipf picker, progress line, report/JSON/PNG output) shared with the demo."""
