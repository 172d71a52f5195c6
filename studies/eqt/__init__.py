"""Extended query tags: attributes a user makes searchable, and their per-partition values."""
