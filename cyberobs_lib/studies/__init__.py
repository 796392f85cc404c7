"""Study-level functions called by the notebooks: each returns a table or a figure, never prints."""
