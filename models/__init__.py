"""Neural network modules, checkpoint bundles, and the training / evaluation CLIs.

`python -m models train TASK --data-dir DIR` and `python -m models evaluate TASK --data-dir DIR`,
where TASK is one of vision, speech, nlp, recommend.
"""
