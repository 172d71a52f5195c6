"""What tests share: factories, requests, and one `store()`. Tests import from here, never from
conftest.py (fixtures only) or from another test file."""

from __future__ import annotations

from tests.helpers.admin import admin_login, admin_page
from tests.helpers.dicom import (
    BIG_OB,
    BIG_OB_VALUE,
    SMALL_OB,
    binary_attributes_bytes,
    dicom_bytes,
    nested_bytes,
    read,
    study_files,
    uids_of,
    with_private,
)
from tests.helpers.eqt import add_tags, reindex, tag_entry, tags_ready
from tests.helpers.feed import delete, feed_rows, update
from tests.helpers.http import (
    DICOM_JSON,
    MULTIPART_DICOM,
    ORIGINAL,
    asgi_get,
    base,
    instance_url,
    multipart_body,
    multipart_parts,
    response_bytes,
    store,
    stow,
)
from tests.helpers.live import ROOT, free_port, live_server, test_database_url
from tests.helpers.oidc import AUDIENCE, ROLE_FOR, ROLES, LocalIssuer, bearer, challenge, local_issuer, rsa_key
from tests.helpers.operations import (
    WorkerKilled,
    blob_bytes,
    export_body,
    files_under,
    patient_name_change,
    post_export,
    result_path,
    run_export,
    start,
    wado_original,
)
from tests.helpers.qido import Archive, Study, column, key, results, search, value
from tests.helpers.routes import HTTP_METHODS, served_patterns, served_routes, view_methods
from tests.helpers.rows import creating_instance
from tests.helpers.workers import (
    Workers,
    operations_resume_run,
    wait_for,
    worker_children,
    worker_kill,
    worker_start,
)
from tests.helpers.workitems import (
    code,
    dataset,
    first_value,
    new_workitem,
    performed_procedure,
    referenced_request,
    state_change,
    tag,
    ups,
)

__all__ = [
    "BIG_OB", "BIG_OB_VALUE", "SMALL_OB", "binary_attributes_bytes",
    "DICOM_JSON", "MULTIPART_DICOM", "admin_login", "admin_page", "ORIGINAL", "ROOT", "free_port", "test_database_url", "Archive", "Study", "WorkerKilled", "asgi_get", "base",
    "HTTP_METHODS", "served_patterns", "view_methods",
    "AUDIENCE", "ROLE_FOR", "ROLES", "LocalIssuer", "bearer", "challenge", "local_issuer", "rsa_key",
    "blob_bytes", "column", "creating_instance", "delete", "dicom_bytes", "export_body", "feed_rows", "files_under", "instance_url",
    "key", "live_server", "multipart_body", "nested_bytes", "multipart_parts", "patient_name_change", "post_export", "read",
    "response_bytes", "result_path", "served_routes", "results", "run_export", "search", "start", "store", "stow", "study_files",
    "uids_of", "update", "value", "wado_original", "operations_resume_run", "wait_for", "worker_children", "worker_kill", "worker_start",
    "add_tags", "reindex", "tag_entry", "tags_ready", "Workers", "with_private",
    "code", "dataset", "first_value", "new_workitem", "performed_procedure", "referenced_request", "state_change", "tag", "ups",
]
