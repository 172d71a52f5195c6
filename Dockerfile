FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml ./
RUN pip install --no-cache-dir "django>=5.2,<5.3" djangorestframework "pydicom>=3" celery redis "psycopg[binary]" \
    "django-storages[s3]" uvicorn gunicorn numpy pylibjpeg pylibjpeg-openjpeg pylibjpeg-rle pillow
COPY . .
ENV DICOM_DATA_DIR=/data
EXPOSE 8000
CMD ["gunicorn", "dicomsvc.asgi:application", "-k", "uvicorn.workers.UvicornWorker", "-w", "4", "-b", "0.0.0.0:8000", "--timeout", "600"]
