"""The kit the reference pipelines are built from.

``mlprop.digits`` and ``mlprop.colour`` differ in their data, network, preprocessing
constants and augmentations; everything else they do the same way, and that lives here
once, one job a module:

- :mod:`~mlprop.reference.splits`: the split containers, the once-per-process memo of a
  seeded split, rows taken by index;
- :mod:`~mlprop.reference.cache`: the cache directory, the cache key, and build-or-load of
  the trained package under a file lock (verified on load, retrained when damaged);
- :mod:`~mlprop.reference.training`: the seeded training loop (``run_epochs`` over
  ``run_epoch``) and the base of the training configurations;
- :mod:`~mlprop.reference.checkpoints`: the manifest fields and the target's
  ``save_model`` / ``load_model`` over the verified package format;
- :mod:`~mlprop.reference.serving`: the cached trained weights, fresh copies of them, and the
  eval-mode softmax serving path;
- :mod:`~mlprop.reference.augment`: the argument checks every augmentation shares;
- :mod:`~mlprop.reference.targets`: the :class:`~mlprop.target.Target` assembled from a
  pipeline's modules.

The kit imports neither pipeline: what it needs of the package format
(:mod:`mlprop.digits.artifacts`) is handed to it, so any module of it can be imported first.
"""
