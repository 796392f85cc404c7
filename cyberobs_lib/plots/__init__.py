"""Figures of the studies: functions take ax=None and return the matplotlib Axes."""
