"""QIDO-RS: query parsing, matching on the indexed columns, and result building."""
