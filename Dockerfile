# Sound Fusion: one image for every process role (web, worker, beat, migrate), chosen by the
# entrypoint's first argument. Multi-stage: compilers stay in the build stage.
#   docker build -t soundfusion .
#   docker run --env-file prod.env soundfusion web
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libpq-dev \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

FROM python:3.11-slim-bookworm
# Pango and fonts for the PDFs: call sheets, payslips and P9 cards (WeasyPrint).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
      libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --uid 10001 --home-dir /home/soundfusion soundfusion
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root . /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=soundfusion_attendance.settings \
    GUNICORN_BIND=0.0.0.0:8000 \
    STATIC_ROOT=/app/staticfiles
# Static files are collected (hashed and compressed) into the image, never at start. The
# settings refuse to load in production without secrets: these build-only values never leave
# this step.
RUN DEBUG=False SINGLE_BOX=True ALLOWED_HOSTS=build.invalid \
    SECRET_KEY="build-only-$(python -c 'import secrets; print(secrets.token_urlsafe(48))')" \
    MPESA_CONSUMER_KEY=build MPESA_CONSUMER_SECRET=build MPESA_PASS_KEY=build \
    python manage.py collectstatic --noinput --verbosity 0
USER soundfusion
EXPOSE 8000
# Liveness only (the process answers); readiness, which asks the database, Redis and the
# broker, is /api/ready/ for the balancer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health/', timeout=4)"]
ENTRYPOINT ["/app/soundfusion_attendance/deploy/entrypoint"]
CMD ["web"]
