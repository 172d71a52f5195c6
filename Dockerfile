FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml ./
# The dependencies exactly as pyproject.toml declares them (the project itself installs no package).
RUN pip install --no-cache-dir .
COPY . .
ENV DICOM_DATA_DIR=/data
# glibc malloc (see dicomsvc/malloc.py): one arena; buffers below 4 MiB reused, not mapped per request.
ENV MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=4194304 MALLOC_TRIM_THRESHOLD_=16777216
EXPOSE 8000
CMD ["gunicorn", "dicomsvc.asgi:application", "-k", "uvicorn.workers.UvicornWorker", "-w", "4", "-b", "0.0.0.0:8000", "--timeout", "600"]
