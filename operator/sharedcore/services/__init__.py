"""The SharedService controller: its work queue and workers, the reconcile, its status and drift checks."""
