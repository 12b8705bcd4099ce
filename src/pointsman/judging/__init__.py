"""Judged samples: a share of live traffic (or every answered request of a replayed log)
answered again, in the background, by a reference model and graded by a judge model; the
grades are stored as labels of source ``judge`` (see :mod:`pointsman.judging.service`)."""
