"""The evaluation grid: which runs a study needs, which are done, and the executors that run the rest."""
