"""The parts of a search report (:mod:`tune.report` puts them together): :mod:`.collect` reads the
experiment folder, :mod:`.plots` draws the figures (and logs the confusion matrix to TensorBoard),
:mod:`.tables` holds the published figures and builds the tables, :mod:`.render` writes one list of
sections as Markdown and as self-contained HTML."""
