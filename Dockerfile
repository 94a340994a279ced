# syntax=docker/dockerfile:1
# docchain API image.
#
#   docker build -t docchain .
#   docker run -p 8000:8000 -e DOCCHAIN_RPC_URL=... -e DOCCHAIN_RELAYER_KEYSTORE=... docchain
#
# Two stages: `build` installs the docchain distribution and its dependencies into a virtualenv
# (build tools live only here), `runtime` copies that virtualenv onto a fresh slim base. The compiled
# contract artifacts (contracts/build/*.json) are package data of docchain.contracts, so the image
# never needs solc or node: nothing is compiled at run time.
# The same image runs the one-shot `docchain deploy` step of docker-compose.yml.

# ---------------------------------------------------------------------------- build
FROM python:3.11.14-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/docchain

WORKDIR /src
# Metadata first, then the sources: only what the distribution packages (see .dockerignore).
COPY pyproject.toml README.md ./
COPY chain/ chain/
COPY api/ api/
COPY client/ client/
COPY contracts/ contracts/

# A non-editable install: the package, its dependencies and the committed artifacts land in the venv.
# The import check fails the build if a module or the artifacts did not make it into the wheel.
RUN /opt/docchain/bin/pip install . \
 && /opt/docchain/bin/python -c "import docchain.api.app, docchain.client.cli; from docchain.chain import artifacts; artifacts.load()"

# ---------------------------------------------------------------------------- runtime
FROM python:3.11.14-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="docchain" \
      org.opencontainers.image.description="docchain API: sign documents and prove on Ethereum who signed them, when, and that they are unchanged" \
      org.opencontainers.image.licenses="MIT"

# A fixed, unprivileged uid/gid (Kubernetes' runAsNonRoot needs a numeric user). The data and document
# directories are created here, owned by that user, so named volumes mounted on them inherit the owner.
RUN groupadd --system --gid 10001 docchain \
 && useradd --system --uid 10001 --gid docchain --home-dir /var/lib/docchain --shell /usr/sbin/nologin docchain \
 && mkdir -p /var/lib/docchain/data /var/lib/docchain/documents /etc/docchain \
 && chown -R docchain:docchain /var/lib/docchain

COPY --from=build /opt/docchain /opt/docchain

ENV PATH="/opt/docchain/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DOCCHAIN_DATA_DIR=/var/lib/docchain/data \
    DOCCHAIN_STORAGE_DIR=/var/lib/docchain/documents

WORKDIR /var/lib/docchain
USER 10001:10001
EXPOSE 8000

# Liveness only (/healthz); /readyz (node + database) is for load balancers, not for restarting.
# The slim base has no curl: the interpreter that is already there does the request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

CMD ["python", "-m", "docchain.api", "--host", "0.0.0.0", "--port", "8000"]
