"""UPS-RS workitems (PS3.18 §11): a worklist per partition, pushed and pulled over DICOMweb.

An app of its own beside `studies` (it reads no instance); it imports partitions and plumbing only.
"""
