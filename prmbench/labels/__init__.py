"""Step labels: readers of labelled data sets, Monte Carlo labelling, consensus and merging."""
