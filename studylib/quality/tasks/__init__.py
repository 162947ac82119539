"""Task declarations (``*.yaml``, one per task, found by scanning this folder) and the answer
checkers generated tasks name (``answers``)."""
