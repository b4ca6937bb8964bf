"""Files and folders: where emohrnet reads and writes, and how it writes safely.

- :mod:`emohrnet.io.location` -- a folder on local disk or in an object store (``s3://``, ``gs://``)
  behind one interface (:class:`Location`).
- :mod:`emohrnet.io.storage` -- atomic writes, checksums, the refusal to write an output over an input.
- :mod:`emohrnet.io.paths` -- ``$EMOHRNET_HOME`` and the default folders under it.
- :mod:`emohrnet.io.audio` -- decoding an audio file (WAV, FLAC, ...) to a 16 kHz mono waveform.
- :mod:`emohrnet.io.experiment_paths` -- paths an experiment's files name, read against where it is now.
- :mod:`emohrnet.io.orphans` -- worker processes that end with their parent.
"""
