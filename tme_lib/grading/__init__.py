"""Grading a class's notebooks from the course's own source (``python -m tme_lib.grade``).

- :mod:`.course`: what a chapter asks (its exercises, their checkers, the cells around them),
  read from the course's notebooks, never from a submission;
- :mod:`.driver`: the program that runs one submission in a separate process: the course's
  cells, the student's exercise cells, then the course's checkers, and reports each verdict
  on a channel of its own;
- :mod:`.sandbox`: the process around it: a temporary copy of the submission's folder, a
  read-only copy of the library checked before each submission, time and memory limits.
"""
