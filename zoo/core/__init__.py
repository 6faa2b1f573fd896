"""The core layer: what a model is and what it needs, with no training, export or application code.

Registry and recipes (`registry`, `spec`, `recipe`, `models/`), data sets (`datasets`, `data`), images and
their preprocessing (`images`, `preprocess`), weights and checkpoints (`weights`, `checkpoint`, `loading`),
run folders (`rundir`), the device (`device`). Engines (zoo.training, zoo.export, zoo.bench) build on it;
applications (zoo.api, zoo.cli, zoo.serve, ...) build on those. An import-linter contract keeps it so.
"""
