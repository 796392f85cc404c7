"""Incident declaration files read into the contract frame (moved here from studies/)."""
