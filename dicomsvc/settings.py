"""Django settings, read from environment variables (see .env.example for the full list)."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from dicomsvc.api.roles import roles_file_read
from dicomsvc.api.tokens import issuer_url_validate
from dicomsvc.env import (
    SettingError,
    database_from_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_origins,
    env_str,
    env_template,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Service -----------------------------------------------------------------------------
PORT = env_int("PORT", 8000, minimum=1)
DICOM_DATA_DIR = Path(env_str("DICOM_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DICOM_PUBLIC_BASE_URL = env_str("DICOM_PUBLIC_BASE_URL", f"http://127.0.0.1:{PORT}").rstrip("/")
DICOM_ENABLE_DATA_PARTITIONS = env_bool("DICOM_ENABLE_DATA_PARTITIONS", False)
# Microsoft caps one STOW file at 2 GB (2147483647 bytes); we apply the cap to the whole body.
DICOM_MAX_STOW_BYTES = env_int("DICOM_MAX_STOW_BYTES", 2 * 1024**3, minimum=1)
# Transcoding, frame extraction without a frame index and rendering read the whole dataset.
DICOM_MAX_TRANSCODE_BYTES = env_int("DICOM_MAX_TRANSCODE_BYTES", 100 * 1024**2, minimum=1)
# Binary attributes up to this size go into metadata inline (InlineBinary), larger ones (and
# Pixel Data always) as a BulkDataURI; at most 64 KiB, the size the store reads values up to.
DICOM_BULKDATA_THRESHOLD_BYTES = env_int("DICOM_BULKDATA_THRESHOLD_BYTES", 1024, minimum=0, maximum=65536)
# A row left in "creating" by a crashed request blocks its UIDs (45071) only this long.
DICOM_STALE_CREATING_SECONDS = env_int("DICOM_STALE_CREATING_SECONDS", 600, minimum=1)
DICOM_STORAGE_BACKEND = env_choice("DICOM_STORAGE_BACKEND", "local", ("local", "s3"))
# A running operation whose worker has not reported for this long is taken over by another
# worker (docs/bulk-update.md). Keep it above the time one instance file takes to rewrite.
DICOM_OPERATION_LEASE_SECONDS = env_int("DICOM_OPERATION_LEASE_SECONDS", 300, minimum=1)
# Pause after each instance a bulk update rewrites, to bound its I/O on a busy server.
DICOM_UPDATE_INSTANCE_DELAY_MS = env_int("DICOM_UPDATE_INSTANCE_DELAY_MS", 0, minimum=0)
# Files a bulk update rewrites at once within a study (the time goes into fsync, not the CPU).
DICOM_UPDATE_PARALLEL_FILES = env_int("DICOM_UPDATE_PARALLEL_FILES", 4, minimum=1)
# How old each process's copy of the extended query tag list may get (docs/extended-query-tags.md).
DICOM_EXTENDED_QUERY_TAG_CACHE_MS = env_int("DICOM_EXTENDED_QUERY_TAG_CACHE_MS", 2000, minimum=0)
# Instances a reindex reads and indexes per transaction.
DICOM_REINDEX_BATCH_SIZE = env_int("DICOM_REINDEX_BATCH_SIZE", 500, minimum=1)
# Helper tasks a reindex enqueues, so that as many more workers index beside its runner.
DICOM_REINDEX_HELPERS = env_int("DICOM_REINDEX_HELPERS", 1, minimum=0)



def _secret_key() -> str:
    """DJANGO_SECRET_KEY, or a random key kept in the data dir so `make run` needs no setup."""
    key = env_str("DJANGO_SECRET_KEY", "")
    if key:
        return key
    path = DICOM_DATA_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])

# --- Django ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "dicomsvc.admin_apps.DicomAdminConfig",  # django.contrib.admin with the dashboard site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "corsheaders",
    "drf_spectacular",
    "dicomsvc",
    "partitions",
    "studies",
    "studies.workitems",
    "changefeed",
    "operations",
]

# Everything but SecurityMiddleware serves the admin console alone: Django's middleware, passed
# by on the DICOMweb API, which needs no cookies, sessions or CSRF (dicomsvc/middleware.py).
# With CORS on, django-cors-headers' CorsMiddleware comes first (the CORS section below).
MIDDLEWARE = [
    "dicomsvc.middleware.security_middleware",
    "dicomsvc.middleware.audit_middleware",
    "dicomsvc.middleware.SessionMiddleware",
    "dicomsvc.middleware.CommonMiddleware",
    "dicomsvc.middleware.AuthenticationMiddleware",
    "dicomsvc.middleware.MessageMiddleware",
    "dicomsvc.middleware.XFrameOptionsMiddleware",
]
BROWSER_PATH_PREFIXES = ("/admin", "/static/")

ROOT_URLCONF = "dicomsvc.urls"
# models.W040: SQLite builds the extended query tag value indexes without their INCLUDE columns,
# which only let PostgreSQL answer a search from the index alone; nothing to act on.
SILENCED_SYSTEM_CHECKS = ["models.W040"]
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "dicomsvc.asgi.application"

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DICOM_DATA_DIR / 'db.sqlite3'}")
# PostgreSQL connections per process (0: connect per request, e.g. behind PgBouncer). Each
# gunicorn worker and Celery process has its own pool: keep workers x size under max_connections.
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 10, minimum=0)
DATABASES = {
    "default": database_from_url("DATABASE_URL", DATABASE_URL, pool_max_size=DATABASE_POOL_MAX_SIZE)
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Tests use a file, not Django's shared-cache in-memory database: shared cache takes
    # table locks that ignore the busy timeout, so concurrency tests would fail spuriously.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"dicomsvc-test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DICOM_DATA_DIR / "static"

# Request bodies above this spill to a temporary file (Django's ASGI handler and upload
# handlers both honour it), so a large STOW never sits whole in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2
FILE_UPLOAD_TEMP_DIR = None
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024**2

# --- Blob storage ------------------------------------------------------------------------
DICOM_S3_BUCKET = env_str("DICOM_S3_BUCKET", "dicom")
DICOM_S3_ENDPOINT_URL = env_str("DICOM_S3_ENDPOINT_URL", "")
DICOM_S3_REGION = env_str("DICOM_S3_REGION", "us-east-1")

if DICOM_STORAGE_BACKEND == "s3":
    _dicom_storage: dict[str, object] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": DICOM_S3_BUCKET,
            "endpoint_url": DICOM_S3_ENDPOINT_URL or None,
            "region_name": DICOM_S3_REGION,
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": False,
        },
    }
else:
    _dicom_storage = {
        "BACKEND": "studies.blobstore.DurableFileSystemStorage",
        "OPTIONS": {"location": str(DICOM_DATA_DIR / "blobs")},
    }

STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DICOM_DATA_DIR / "media")},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "dicom": _dicom_storage,
}

# --- Export (docs/export.md) -------------------------------------------------------------
# Directories the filesystem destination may write under, colon-separated; none disables it.
DICOM_EXPORT_FILESYSTEM_ROOTS = env_list("DICOM_EXPORT_FILESYSTEM_ROOTS", [], separator=":")
for _root in DICOM_EXPORT_FILESYSTEM_ROOTS:
    if not os.path.isabs(_root):
        raise SettingError(f"DICOM_EXPORT_FILESYSTEM_ROOTS: {_root!r} is not an absolute path")
# Buckets the s3 destination may write to (`*` = any the credentials allow); none disables it.
DICOM_EXPORT_S3_ALLOWED_BUCKETS = env_list("DICOM_EXPORT_S3_ALLOWED_BUCKETS", [])
# Custom `endpointUrl`s a request may name (scheme://host[:port]); none = AWS's own endpoints only.
DICOM_EXPORT_S3_ALLOWED_ENDPOINTS = env_list("DICOM_EXPORT_S3_ALLOWED_ENDPOINTS", [])
# Microsoft documents no maximum; 1,000 identifiers keeps one request's parameters small.
DICOM_EXPORT_MAX_IDENTIFIERS = env_int("DICOM_EXPORT_MAX_IDENTIFIERS", 1000, minimum=1)

# --- CORS (docs/viewers.md) ---------------------------------------------------------------
# Origins whose pages (a viewer such as OHIF) may call the DICOMweb API from a browser,
# comma-separated; `*` = any; empty = no CORS headers. Only /v{n}/ routes: never the admin.
DICOM_CORS_ALLOWED_ORIGINS = env_origins("DICOM_CORS_ALLOWED_ORIGINS")
CORS_ALLOW_ALL_ORIGINS = "*" in DICOM_CORS_ALLOWED_ORIGINS
CORS_ALLOWED_ORIGINS = [origin for origin in DICOM_CORS_ALLOWED_ORIGINS if origin != "*"]
CORS_API_PATHS = r"^/v\d+/"
# Off, the middleware passes every request by untouched (no Vary: Origin, no preflight answer).
CORS_URLS_REGEX = CORS_API_PATHS if DICOM_CORS_ALLOWED_ORIGINS else r"(?!)"
# CorsMiddleware is sync- and async-capable and not a MiddlewareMixin, so it runs in the
# request's one thread hop (dicomsvc/asgi_handler.py), or on the event loop under Django's own
# ASGI handler; it answers a preflight itself, before any view or DRF authentication runs. With
# no allowed origin it would pass every request by, so it is not in the chain at all.
if DICOM_CORS_ALLOWED_ORIGINS:
    MIDDLEWARE = ["corsheaders.middleware.CorsMiddleware", *MIDDLEWARE]
CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
# Named for clarity; `*` adds any other header (Microsoft's X-MS-AZUREDICOM-AUDIT-* audit
# headers have free names). A `*` never covers Authorization, hence its own entry; it holds for
# requests without credentials, and bearer tokens need none (no cookies cross origins).
CORS_ALLOW_HEADERS = (
    "accept", "authorization", "content-type", "if-none-match", "range", "msdicom-request-original",
    "x-ms-correlation-request-id", "*",
)  # fmt: skip
CORS_EXPOSE_HEADERS = ("Warning", "Location", "Content-Location", "ETag", "Content-Type", "Content-Range")
CORS_ALLOW_CREDENTIALS = False
# A day; browsers cap it lower (Chromium at two hours).
CORS_PREFLIGHT_MAX_AGE = 86400

# --- Authentication, authorization, audit (docs/auth.md) ----------------------------------
# Off: every DICOMweb route answers anyone (start-up logs a warning). On: OIDC bearer tokens.
DICOM_AUTH_ENABLED = env_bool("DICOM_AUTH_ENABLED", False)
# The token issuer: https://, or http:// on a loopback address. Tokens' `iss` must equal it.
DICOM_AUTH_AUTHORITY = env_str("DICOM_AUTH_AUTHORITY", "")
DICOM_AUTH_AUDIENCE = env_str("DICOM_AUTH_AUDIENCE", "")
DICOM_AUTH_ROLES_CLAIM = env_str("DICOM_AUTH_ROLES_CLAIM", "roles")
# Microsoft's roles.json format; unset: any valid token may do everything.
DICOM_AUTH_ROLES = roles_file_read("DICOM_AUTH_ROLES_FILE", env_str("DICOM_AUTH_ROLES_FILE", ""))
if DICOM_AUTH_ENABLED:
    if not DICOM_AUTH_AUTHORITY:
        raise SettingError("DICOM_AUTH_AUTHORITY: required when DICOM_AUTH_ENABLED is true")
    issuer_url_validate("DICOM_AUTH_AUTHORITY", DICOM_AUTH_AUTHORITY)
    if not DICOM_AUTH_AUDIENCE:
        raise SettingError("DICOM_AUTH_AUDIENCE: required when DICOM_AUTH_ENABLED is true")
# JSON-lines audit file; empty: the `dicomsvc.audit` logger.
DICOM_AUDIT_LOG = env_str("DICOM_AUDIT_LOG", "")

# --- REST framework ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "dicomsvc.api.errors.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "dicomsvc.api.negotiation.PassThroughNegotiation",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["dicomsvc.api.json_body.JSONParser"],
    # Both step aside while DICOM_AUTH_ENABLED is false.
    "DEFAULT_AUTHENTICATION_CLASSES": ["dicomsvc.api.auth.BearerAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["dicomsvc.api.auth.DataActionPermission"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "dicomsvc.api.openapi.DicomAutoSchema",
}

# The OpenAPI documents at /v{n}/api.json and /v{n}/api.yaml (dicomsvc/api/openapi.py).
SPECTACULAR_SETTINGS = {
    "TITLE": "DICOMweb API",
    "DESCRIPTION": "DICOMweb (QIDO-RS, WADO-RS, STOW-RS, DELETE) with Microsoft's extensions; see docs/api.md.",
    "VERSION": "2",
    "SERVE_INCLUDE_SCHEMA": False,
    # Route segments accept any text so a malformed UID is a 400 naming it, not a 404.
    "PATH_CONVERTER_OVERRIDES": {"seg": str, "ver": str},
    # Error bodies are plain text: nothing to describe beyond the status.
    "COMPONENT_SPLIT_REQUEST": False,
}

# --- Celery ------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
# filesystem:// is kombu's filesystem transport with whole-or-nothing message files (dicomsvc.broker).
CELERY_BROKER_TRANSPORT = "dicomsvc.broker:Transport" if CELERY_BROKER_URL.startswith("filesystem") else None
_broker_dir = DICOM_DATA_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = (
    {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # kombu's default is ./control in the working directory (worker broadcasts).
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    # An unacknowledged task (its worker died) is redelivered after this many seconds.
    else {"visibility_timeout": env_int("CELERY_BROKER_VISIBILITY_TIMEOUT", 3600, minimum=1)}
)
# The worker's pool. prefork (separate processes) with Redis. With the filesystem broker,
# whose transport has no event loop, Celery falls back to billiard's blocking pool, where idle
# pool processes wait for work holding one shared lock: a pool process killed while waiting
# (SIGKILL, the OOM killer) never releases it and every later one waits on it forever
# (celery/billiard#104, #457). There the tasks run in threads of the one worker process.
CELERY_WORKER_POOL = env_choice(
    "CELERY_WORKER_POOL", "threads" if CELERY_BROKER_URL.startswith("filesystem") else "prefork",
    ("prefork", "threads", "solo"),
)  # fmt: skip
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The admin's "Open in viewer" link (e.g. an OHIF deployment); empty: no link.
DICOM_VIEWER_URL = env_template(
    "DICOM_VIEWER_URL", "", fields=("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = False

# --- Admin bootstrap (make run) -------------------------------------------------------------
DJANGO_SUPERUSER_USERNAME = env_str("DJANGO_SUPERUSER_USERNAME", "")
DJANGO_SUPERUSER_EMAIL = env_str("DJANGO_SUPERUSER_EMAIL", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"denied_without_traceback": {"()": "dicomsvc.logfilters.permission_denied_without_traceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["denied_without_traceback"]}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO").upper()},
}
