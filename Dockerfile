# The code location image: gl-pipelines and its dependencies at the versions uv.lock pins (no dev tools, no demo
# plant), served by its own gRPC code server. The same image runs dagster-webserver and dagster-daemon
# (deploy/compose.yaml). Written, not built here: this machine has no container runtime (README "Deployment").
FROM python:3.11-slim AS build
# uv from PyPI at the version the lock pins, as scripts/setup installs it.
RUN pip install --no-cache-dir "uv==0.13.9"
ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /src
# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
# The project itself as a regular (non-editable) install: the final image needs no source tree.
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 gl
COPY --from=build /opt/venv /opt/venv
COPY dagster_home/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY deploy/workspace.yaml /opt/gl/deploy/workspace.yaml
# Relative paths of the site config (drop folders, reports) and the default warehouse data/warehouse.duckdb
# are taken from the working directory of an installed package: mount a volume at /opt/gl/data.
WORKDIR /opt/gl
RUN mkdir -p /opt/gl/data && chown gl /opt/gl/data
USER gl
ENV PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    GL_SITE_CONFIG=/etc/gl/site.yaml
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", \
     "-m", "gl_pipelines.definitions", "--location-name", "gl_pipelines"]
