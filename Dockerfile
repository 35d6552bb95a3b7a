# syntax=docker/dockerfile:1
# Image of every icli process: the web app (default CMD), the RQ worker
# (`python -m generator`) and the one-shot migration (`icli db upgrade`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Fixed, non-root uid/gid: Compose bind-mounts file secrets with their host owner
# and mode, so the secret files on the host must be owned by 10001 and chmod 600.
RUN groupadd --system --gid 10001 icli \
 && useradd --system --uid 10001 --gid icli --no-create-home \
        --home-dir /var/lib/icli --shell /usr/sbin/nologin icli

# LibreOffice for the worker's PDF conversion: Writer without GUI, the UNO bridge of the
# resident converter (Debian's python3-uno) and metric-compatible fonts (Carlito has
# Calibri's metrics: the PDF paginates as the Word file does).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libreoffice-writer-nogui python3-uno fonts-liberation fonts-crosextra-carlito \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . /app
# Non-editable install; the build leftovers are removed so that /app only holds
# the sources and the Word templates.
RUN pip install --no-cache-dir . \
 && rm -rf /app/build /app/*.egg-info \
 && install -d -o icli -g icli -m 0700 /var/lib/icli

ENV ICLI_ENV=production \
    ICLI_TEMPLATES_DIR=/app/templates_docx \
    ICLI_INSTANCE=/var/lib/icli

# Run from the instance directory, not /app, so that every process (gunicorn,
# `python -m generator`, `icli`) imports the installed package, never the copied sources.
WORKDIR /var/lib/icli
USER icli:icli

EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "3", "--preload", "--no-control-socket", "intake.wsgi:app"]
