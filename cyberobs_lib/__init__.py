"""cyberobs — observatory of the cybersecurity of French health establishments.

The library cleans, normalizes and analyses external vulnerability audits. Stages flow one way:
read → validate → normalize → enrich → analyse → present. Notebooks in ``notebooks/`` only call it.
"""

__version__ = "0.1.0"
CONTRACT_VERSION = 1
