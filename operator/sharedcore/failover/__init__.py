"""Failover, switchover and failback: a pure planner and step machine here, their I/O in the controller."""
