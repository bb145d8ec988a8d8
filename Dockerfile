# casesvc production image: gunicorn on port 8000 as a non-root user.
# Needs CASESVC_ENV=production, CASESVC_SECRET_KEY, CASESVC_DATABASE_URL (PostgreSQL) and CASESVC_PUBLIC_URL at run time.
# Installs exactly requirements/main.txt (pinned, hash-checked; `make lock` refreshes it), then
# casesvc itself without resolving anything more.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CASESVC_ENV=production \
    CASESVC_INSTANCE_PATH=/var/lib/casesvc
RUN useradd --system --uid 10001 --home-dir /var/lib/casesvc --create-home casesvc
WORKDIR /src
COPY requirements/main.txt requirements/main.txt
RUN pip install --no-cache-dir --require-hashes -r requirements/main.txt
COPY pyproject.toml README.md ./
COPY casesvc ./casesvc
# the gettext catalogues (bokmål problems) are compiled here, as `make install` does
RUN pybabel compile --directory casesvc/translations --domain messages --statistics \
    && pip install --no-cache-dir --no-deps --no-build-isolation . && cd / && rm -rf /src
USER casesvc
WORKDIR /var/lib/casesvc
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# Apply migrations with `docker run … casesvc db upgrade` (docker-compose.yml: the `migrate`
# service) before starting a new version.
CMD ["casesvc", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
