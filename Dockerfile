# postback's container image: `postback serve` by default (API + worker + web UI on SQLite
# in /var/lib/postback); `postback api`, `postback worker` and `postback migrate` on
# PostgreSQL for the many-process shape (deploy/compose.yaml, deploy/k8s/, docs/deploy.md).
#
#   docker build -t postback .                    (or: podman build --format docker ...)
#   docker build --build-arg BASE_IMAGE=... .     any Debian-like image with python3 >= 3.11
#                                                 and its venv module
#
# Both stages use the same base, so the virtualenv built in the first finds its Python at
# the same path in the second.
ARG BASE_IMAGE=python:3.12-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_CACHE_DIR=1
WORKDIR /build
# The dependencies first, from pyproject.toml alone: a change to the sources rebuilds only
# the layers after COPY src.
COPY pyproject.toml README.md ./
RUN python3 -m venv /opt/postback \
 && /opt/postback/bin/pip install --upgrade pip \
 && python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
print("\n".join(p["build-system"]["requires"] + p["project"]["dependencies"]))' \
    > requirements.txt \
 && /opt/postback/bin/pip install -r requirements.txt
# Then the wheel, built from this checkout and installed into the virtualenv that is all
# the next stage copies (no compiler, pip cache, sources or build tools).
COPY src ./src
RUN /opt/postback/bin/pip wheel --no-build-isolation --no-deps --wheel-dir /build/dist . \
 && /opt/postback/bin/pip install /build/dist/postback-*.whl \
 && /opt/postback/bin/pip uninstall --yes setuptools wheel \
 && /opt/postback/bin/postback --help > /dev/null

FROM ${BASE_IMAGE}
# An unprivileged user with a fixed uid (Kubernetes' runAsNonRoot checks a number), added
# by hand so that a base without useradd works too.
RUN echo 'postback:x:10001:10001:postback:/var/lib/postback:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'postback:x:10001:' >> /etc/group \
 && mkdir -p /var/lib/postback \
 && chown 10001:10001 /var/lib/postback
COPY --from=build /opt/postback /opt/postback
COPY deploy/healthcheck.py /opt/postback/healthcheck.py
ENV PATH=/opt/postback/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    POSTBACK_HOST=0.0.0.0 \
    POSTBACK_PORT=8000 \
    POSTBACK_DATABASE_URL=sqlite:////var/lib/postback/postback.db \
    POSTBACK_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/postback
# The SQLite database and its generated key (postback.key) live here on the default command.
VOLUME /var/lib/postback
EXPOSE 8000
# /api/v1/health answers 204 once the database answers. A worker has no API port: compose
# and Kubernetes point their checks at its metrics port instead (healthcheck.py PORT PATH).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "/opt/postback/healthcheck.py"]
ENTRYPOINT ["postback"]
CMD ["serve"]
