"""mlprop's property suite, one module per component of the pipeline (installed as
``mlprop.properties``): run it with ``mlprop check``, ``pytest --pyargs mlprop.properties``
or ``[tool.mlprop] suite = true`` in your own pytest run; the target comes from the pytest
plugin (:mod:`mlprop.plugin`)."""
