"""The feedback store: writing feedback rows (group commit), reading them back (filters, pages, streams)."""
