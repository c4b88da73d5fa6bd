"""Replication from the active site to the standby: configuration copied, data replication measured."""
