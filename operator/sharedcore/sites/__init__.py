"""The pair of sites: roles and epochs, heartbeats, the peer and the witness."""
