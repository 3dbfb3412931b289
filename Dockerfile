# Rulebook Auditor: the `rulebook` command in a slim Python 3.11 image.
# durable-rules ships its rule engine as a C extension built at install time, so the build stage
# has a compiler; the runtime stage copies only the installed packages.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rules ./rules
COPY simulator ./simulator
COPY service ./service
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
COPY --from=build /install /usr/local
RUN useradd --create-home --uid 10001 auditor
USER auditor
WORKDIR /home/auditor
ENTRYPOINT ["rulebook"]
CMD ["--help"]
