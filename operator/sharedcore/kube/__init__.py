"""Kubernetes I/O and the kit every controller uses: the client and resources, the watch cache, Events,
merge patches, conditions, the work queue and times."""
