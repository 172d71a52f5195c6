"""Export of studies, series and instances to a directory or an S3 bucket (docs/export.md).

`specification` validates a request, `destinations` writes files out, `selectors` finds the
instances, `services` creates the operation and runs it on a worker.
"""
