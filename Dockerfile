# One image for every shopfleet service; the command picks the service:
#   docker run shopfleet:latest serve products --host 0.0.0.0 --port 3001
# plus a `gateway` target (nginx) for Docker Compose: docker build --target gateway .
#
# BASE_IMAGE: any Debian bookworm based image. The default has Python 3.11; a bare Debian
# image (e.g. one made with debootstrap where no registry is reachable) gets Debian's
# python3, which is 3.11 on bookworm.
# Behind a TLS-intercepting proxy, hand its CA bundle to pip without baking it in:
#   --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN if ! command -v python3 >/dev/null || ! python3 -c "import ensurepip" 2>/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/shopfleet
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
# Dependencies first (their layer survives code changes), then the package itself.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && /opt/shopfleet/bin/pip install -c constraints.txt -r requirements.txt
COPY src ./src
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && /opt/shopfleet/bin/pip install --no-deps . \
    && /opt/shopfleet/bin/python -c "import shopfleet.cli"

FROM ${BASE_IMAGE} AS gateway
# nginx as a non-root user; the entrypoint points nginx's resolver at the container's DNS.
# Its writable files (temp files, micro-cache) go to /var/cache/shopfleet-gateway.
RUN apt-get update && apt-get install -y --no-install-recommends nginx curl \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
    && groupadd --system --gid 10002 gateway \
    && useradd --system --uid 10002 --gid 10002 --no-create-home --shell /usr/sbin/nologin gateway \
    && install -d -o 10002 -g 10002 /var/cache/shopfleet-gateway
COPY deploy/compose/gateway-entrypoint.sh /usr/local/bin/shopfleet-gateway
USER 10002:10002
EXPOSE 8080 8081
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/local/bin/shopfleet-gateway"]

FROM ${BASE_IMAGE} AS runtime
RUN if ! command -v python3 >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --system --gid 10001 shopfleet \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin shopfleet \
    && install -d -o 10001 -g 10001 /app
COPY --from=build /opt/shopfleet /opt/shopfleet
ENV PATH=/opt/shopfleet/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHOPFLEET_ENVIRONMENT=production \
    SHOPFLEET_DATA_DIR=/app/var \
    PORT=3000
WORKDIR /app
USER 10001:10001
# PORT names the port the container's service listens on (Compose sets it per service).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['PORT'] + '/health/live', timeout=2)"]
ENTRYPOINT ["shopfleet"]
CMD ["--help"]
