"""Extended query tags: the API at the base URI and the reindex operation that makes a tag ready."""
