"""`kubectl sharedcore`: the kubectl plugin people act with (console script `kubectl-sharedcore`)."""
